"""Metric sinks: ``metrics.jsonl`` (always) and TensorBoard event files (when available).

TensorBoard needs ``tensorboardX`` or ``tensorboard``; without either, the run notes it once
and writes only ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from pdekit._io import write_atomic


def _tensorboard_writer(logdir: Path):
    """A ``(step, {tag: value}) -> None`` callable and a closer, or ``None``."""
    try:
        from tensorboardX import SummaryWriter

        w = SummaryWriter(str(logdir))

        def add(step, scalars):
            for k, v in scalars.items():
                w.add_scalar(k, v, step)
            w.flush()

        return add, w.close
    except ImportError:
        pass
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        w = EventFileWriter(str(logdir))

        def add(step, scalars):
            values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
            w.add_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=values)))
            w.flush()

        return add, w.close
    except ImportError:
        return None


class MetricsLog:
    """Append-only JSON-lines metrics file plus optional TensorBoard events (process 0 only)."""

    def __init__(self, run_dir: Path, *, resume_step: int, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        self._truncate_after(resume_step)
        tb = _tensorboard_writer(Path(run_dir) / "tb")
        if tb is None:
            print("pdekit train: note: tensorboardX/tensorboard not installed; "
                  "writing metrics.jsonl only", file=sys.stderr)
        self._tb = tb

    def _truncate_after(self, step: int) -> None:
        """Drop records written after the checkpoint being resumed (a killed run's tail) and
        lines that are not JSON records (cut by a kill, or damaged), saying how many."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.splitlines()
        cut = lines[-1:] if lines and not data.endswith(b"\n") else []  # a kill mid-line
        records = [(line, _parse(line)) for line in lines[: len(lines) - len(cut)] if line.strip()]
        keep = [line for line, rec in records if rec is not None and rec["step"] <= step]
        bad = sum(rec is None for _, rec in records)
        if bad:
            print(f"pdekit train: warning: {self.path}: dropped {bad} unreadable line(s)",
                  file=sys.stderr)
        if len(keep) == len(lines):
            return
        write_atomic(self.path, b"".join(k + b"\n" for k in keep))

    def note(self, step: int, fields: dict) -> None:
        """Append a record of an event (``{"step", "event", ...}``, JSON values as given)."""
        if self.enabled:
            self._append({"step": int(step), **fields})

    def _append(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def write(self, step: int, scalars: dict) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if math.isfinite(float(v)) else str(float(v))) for k, v in scalars.items()}
        self._append({"step": int(step), **clean})
        if self._tb is not None:
            self._tb[0](step, {k: float(v) for k, v in scalars.items()})

    def close(self) -> None:
        if self._tb is not None:
            self._tb[1]()
            self._tb = None


def _parse(line: bytes) -> dict | None:
    """A metrics record (a JSON object with an integer ``step``) or ``None``."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(rec, dict) and isinstance(rec.get("step"), int)
    return rec if ok else None


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``; lines that are not records are skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = (_parse(line) for line in path.read_bytes().splitlines() if line.strip())
    return [r for r in records if r is not None]
