"""Where an evaluation reads and writes: the data file of a run's split, the report directory
named by the data it scored, and the names of entries (runs, baselines) in a report."""

from __future__ import annotations

import os
import re
from pathlib import Path


def baseline_name(resolution, inner_steps) -> str:
    return f"solver N={resolution} ({inner_steps} sub-steps)"


def data_path_of(run_cfg, split: str, override=None) -> Path:
    """The evaluation file: ``data_path`` override, ``data.<split>_path``, else ``test.h5``
    beside ``data.train_path`` (configs without a ``test_path`` key)."""
    if override:
        return Path(str(override))
    d = run_cfg.data
    path = d.get(f"{split}_path")
    if path:
        return Path(str(path))
    if split == "test" and d.get("train_path"):
        return Path(str(d.train_path)).with_name("test.h5")
    raise ValueError(f"the run config has no data.{split}_path; pass data_path=<file>")


def _own_data_path(run_cfg, split: str) -> Path | None:
    try:
        return data_path_of(run_cfg, split)
    except ValueError:
        return None


def data_label(run_cfg, split: str, path: Path, override=None) -> str:
    """Name of the evaluated data in a report directory: the split when ``path`` is the run's
    own ``<split>`` file, else the file's stem (characters other than letters, digits, ``._-``
    replaced by ``_``)."""
    own = _own_data_path(run_cfg, split)
    if not override or (own is not None and _same_path(own, Path(path))):
        return split
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem).lstrip(".") or "data"


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def report_dir_of(run_dir: Path, label: str, fingerprint: str) -> Path:
    """``<run>/eval/<label>-<fingerprint>``: one directory per evaluated data set."""
    return Path(run_dir) / "eval" / f"{label}-{fingerprint}"


def run_name(path: Path) -> str:
    parts = path.resolve().parts
    return "/".join(parts[-2:])
