"""Summaries and integrity checks of trajectory files (used by ``pdekit inspect``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import h5py
import numpy as np

from pdekit.data.reader import Trajectories


@dataclasses.dataclass
class ValueSummary:
    """Per-channel value statistics and the positions of non-finite values."""

    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    nonfinite: int
    bad_trajectories: list[int]


def value_summary(tr: Trajectories, block_bytes: int = 64 << 20) -> ValueSummary:
    """Stream ``u`` once: per-channel min/max/mean/std of finite values, non-finite count.

    Raises ``ValueError`` if the data cannot be read (e.g. a truncated file).
    """
    c = tr.channels
    per_traj = max(1, tr.nbytes // max(tr.num_trajectories, 1))
    block = max(1, block_bytes // per_traj)
    lo, hi = np.full(c, np.inf), np.full(c, -np.inf)
    total, total_sq, count = np.zeros(c), np.zeros(c), np.zeros(c)
    nonfinite, bad = 0, []
    for i in range(0, tr.num_trajectories, block):
        try:
            chunk = np.asarray(tr.u[i : i + block], dtype=np.float64)
        except (OSError, RuntimeError) as err:
            raise ValueError(f"{tr.path}: cannot read u[{i}:{i + block}] ({err}); the file is "
                             "corrupt or truncated") from None
        finite = np.isfinite(chunk)
        per = (~finite).reshape(chunk.shape[0], -1).sum(axis=1)
        nonfinite += int(per.sum())
        bad += (i + np.flatnonzero(per)).tolist()
        x = np.moveaxis(chunk, 2, 0).reshape(c, -1)
        ok = np.moveaxis(finite, 2, 0).reshape(c, -1)
        xs = np.where(ok, x, 0.0)
        lo = np.minimum(lo, np.where(ok, x, np.inf).min(axis=1))
        hi = np.maximum(hi, np.where(ok, x, -np.inf).max(axis=1))
        total += xs.sum(axis=1)
        total_sq += (xs**2).sum(axis=1)
        count += ok.sum(axis=1)
    mean = total / np.maximum(count, 1)
    std = np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 0.0))
    return ValueSummary(lo, hi, mean, std, nonfinite, bad)


def param_ranges(tr: Trajectories) -> dict[str, tuple[float, float, float, tuple[int, ...]]]:
    """``name -> (min, max, mean, shape)`` of every per-trajectory parameter."""
    out = {}
    for name, value in sorted(tr.params.items()):
        v = np.asarray(value, dtype=np.float64)
        out[name] = (float(v.min()), float(v.max()), float(v.mean()), tuple(v.shape))
    return out


def layout(tr: Trajectories) -> list[tuple[str, tuple[int, ...], str, Any]]:
    """``(name, shape, dtype, chunks)`` of every dataset in the file (or PDEArena group)."""
    rows = []
    root = tr.file if tr.format == "pdekit" else tr.file[tr.split]

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            rows.append((name, tuple(obj.shape), str(obj.dtype), obj.chunks))

    root.visititems(visit)
    return rows
