"""Opening the training/validation windows and a background batch prefetcher."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import jax
import numpy as np

from pdekit.data.reader import open_trajectories
from pdekit.data.stats import NormStats
from pdekit.data.windows import WindowDataset
from pdekit.models.conditioning import CondNorm


def _check_path(path, key: str) -> None:
    if not Path(path).exists():
        raise FileNotFoundError(f"{key}: data file {path} does not exist "
                                "(generate it with `pdekit generate ...`)")


def open_data(cfg):
    """(train, valid or None) window datasets; training windows hold ``unroll*future`` frames."""
    d, t = cfg.data, cfg.train
    _check_path(d.train_path, "data.train_path")
    if d.valid_path:
        _check_path(d.valid_path, "data.valid_path")
    common = dict(history=int(d.history), stride=int(d.stride), cond_keys=tuple(d.cond_keys),
                  ram_budget_bytes=int(d.ram_budget_bytes))
    tr = open_trajectories(d.train_path)
    stats = None  # the training file's stored statistics (data.normalization=zscore)
    if d.normalization == "none":  # raw fields: statistics that change nothing
        stats = NormStats.identity(tr.channels, tr.spatial_dims, int(d.stride))
    train = WindowDataset(tr, future=int(d.future) * int(t.unroll), stats=stats,
                          **common)
    check_windows(train, cfg, "data.train_path")
    valid = None
    if d.valid_path:
        valid = WindowDataset(d.valid_path, future=int(d.future), stats=train.stats, **common)
        check_windows(valid, cfg, "data.valid_path")
    return train, valid


def cond_ranges(cfg, train_ds) -> dict[str, list[float]]:
    """``{cond key: [lo, hi]}``: the training split's range of each conditioning scalar, or the
    user's ``data.cond_range`` override for a key. Stored in the run's ``derived.cond_range``;
    models map each range to ``[0, data.cond_span]`` (:class:`pdekit.models.CondNorm`)."""
    keys = list(cfg.data.cond_keys)
    override = dict(cfg.data.get("cond_range") or {})
    unknown = sorted(set(override) - set(keys))
    if unknown:
        raise ValueError(f"data.cond_range names {', '.join(unknown)}, which are not in "
                         f"data.cond_keys={keys}")
    table = np.asarray(train_ds.cond, np.float64).reshape(-1, len(keys))
    out = {}
    for i, k in enumerate(keys):
        if k in override:
            lo, hi = (float(v) for v in override[k])
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"data.cond_range.{k} must be [lo, hi] with finite lo < hi, "
                                 f"got {list(override[k])}")
        else:
            lo, hi = float(table[:, i].min()), float(table[:, i].max())
        out[k] = [lo, hi]
    return out


def cond_norm_for(cfg, derived) -> CondNorm | None:
    """The run's :class:`CondNorm`: ``derived.cond_range`` (in ``data.cond_keys`` order) mapped
    to ``[0, data.cond_span]``; ``None`` (cond as it is) when the run records no ranges."""
    ranges = (derived or {}).get("cond_range")
    if not ranges:
        return None
    keys = list(cfg.data.cond_keys)
    missing = [k for k in keys if k not in ranges]
    if missing:
        raise ValueError(f"derived.cond_range lacks {', '.join(missing)} of data.cond_keys")
    return CondNorm.from_ranges([ranges[k] for k in keys], float(cfg.data.cond_span))


def check_windows(ds, cfg, what: str) -> None:
    if ds.num_windows < 1:
        need = cfg.data.history + cfg.data.future * cfg.train.unroll
        raise ValueError(f"{what}: trajectories are too short for history + unroll*future = "
                         f"{need} frames at stride {cfg.data.stride}")


class Prefetcher:
    """Produce device-placed batches for steps ``start..stop-1`` in a background thread.

    ``sample(step)`` returns this process's host batch; ``place(batch)`` puts it on the
    devices. ``wait_s`` accumulates the time the consumer spent waiting for data.
    """

    _DONE = object()

    def __init__(self, sample, place, start: int, stop: int, depth: int = 2):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.wait_s = 0.0
        self._thread = threading.Thread(
            target=self._run, args=(sample, place, start, stop), daemon=True)
        self._thread.start()

    def _run(self, sample, place, start, stop):
        try:
            for step in range(start, stop):
                if self._stop.is_set():
                    return
                item = (step, place(sample(step)))
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            self._q.put(self._DONE)
        except BaseException as err:  # forwarded to the consumer
            self._q.put(err)

    def __iter__(self):
        while True:
            t0 = time.perf_counter()
            item = self._q.get()
            self.wait_s += time.perf_counter() - t0
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


def host_batch_sampler(ds, batch_size: int, seed: int):
    """``step -> this process's part of the global batch`` (deterministic in (seed, step))."""
    def sample(step: int) -> dict:
        batch = ds.sample_batch(step, batch_size, seed=seed, process_index=jax.process_index(),
                                process_count=jax.process_count())
        return {k: np.asarray(v, np.float32) for k, v in batch.items()}

    return sample
