"""Where normalisation statistics live: the ``stats/`` group of generated files, or a
``<file>.stats.json`` sidecar for foreign (PDEArena) files, computed once from the TRAIN split.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import h5py
import numpy as np

from pdekit._io import write_atomic
from pdekit.data.reader import Trajectories, open_trajectories
from pdekit.data.stats import NormStats, compute_stats

STATS_GROUP = "stats"


def write_stats(f: h5py.File, stats: NormStats) -> None:
    """Store ``stats`` as ``stats/{mean,std,diff_mean,diff_std}`` (replacing any old group)."""
    if STATS_GROUP in f:
        del f[STATS_GROUP]
    g = f.create_group(STATS_GROUP)
    for name in ("mean", "std", "diff_mean", "diff_std"):
        g.create_dataset(name, data=getattr(stats, name).astype(np.float64))
    g.attrs["diff_stride"] = int(stats.diff_stride)
    g.attrs["spatial_dims"] = int(stats.spatial_dims)


def read_stats(f: h5py.File, spatial_dims: int) -> NormStats | None:
    """The ``stats/`` group of ``f`` as :class:`NormStats`, or ``None`` if absent."""
    g = f.get(STATS_GROUP)
    if not isinstance(g, h5py.Group):
        return None
    d = {k: np.asarray(g[k][()]) for k in ("mean", "std", "diff_mean", "diff_std") if k in g}
    d.update(spatial_dims=spatial_dims, diff_stride=int(g.attrs.get("diff_stride", 1)))
    return NormStats.from_dict(d)


def sidecar_path(path) -> Path:
    return Path(f"{path}.stats.json")


def load_stats(tr: Trajectories, diff_stride: int = 1) -> NormStats:
    """Statistics for ``tr`` with difference moments at ``diff_stride``.

    pdekit files: the stored ``stats/`` group (differences recomputed in one streaming pass if
    stored at another stride). PDEArena files: the sidecar JSON, created on first use from the
    ``train`` group (or from ``tr``'s split when the file has no train group).
    """
    if tr.format == "pdekit":
        stored = read_stats(tr.file, tr.spatial_dims)
        if stored is not None and stored.diff_stride == diff_stride:
            return stored
        fresh = compute_stats(tr.u, spatial_dims=tr.spatial_dims, diff_stride=diff_stride)
        return fresh
    return _sidecar_stats(tr, diff_stride)


def _sidecar_stats(tr: Trajectories, diff_stride: int) -> NormStats:
    side = sidecar_path(tr.path)
    data: dict = {}
    if side.exists():
        try:
            data = json.loads(side.read_text())
        except (OSError, ValueError):
            warnings.warn(f"{side}: unreadable statistics sidecar; recomputing it", stacklevel=3)
            data = {}
    key = str(int(diff_stride))
    if "mean" in data and key in data.get("diff", {}):
        return NormStats.from_dict({**data, **data["diff"][key], "diff_stride": diff_stride,
                                    "spatial_dims": tr.spatial_dims})
    source = "train" if tr.split != "train" and _has_train(tr) else tr.split
    if source == tr.split:
        stats = compute_stats(tr.u, spatial_dims=tr.spatial_dims, diff_stride=diff_stride)
    else:
        with open_trajectories(tr.path, split=source) as train:
            stats = compute_stats(train.u, spatial_dims=train.spatial_dims,
                                  diff_stride=diff_stride)
    if source != "train":
        warnings.warn(f"{tr.path}: no train split; normalising with {source!r} statistics",
                      stacklevel=3)
    d = stats.to_dict()
    data.update(mean=d["mean"], std=d["std"], source_split=source)
    data.setdefault("diff", {})[key] = {"diff_mean": d["diff_mean"], "diff_std": d["diff_std"]}
    try:
        write_atomic(side, json.dumps(data, indent=1))
    except OSError as err:
        warnings.warn(f"could not write statistics sidecar {side} ({err}); they will be "
                      "recomputed next time", stacklevel=3)
    return stats


def _has_train(tr: Trajectories) -> bool:
    g = tr.file.get("train")
    return isinstance(g, h5py.Group) and any(k.startswith("pde_") for k in g)
