"""Checks of the evaluated data against the run, before anything is rolled out or written.

``pdekit evaluate`` refuses data the run cannot be scored on (a one-line ``ValueError``):

* a different PDE preset than the training data's (``derived.pde`` of the run config, else the
  ``pde`` attribute of its training file), a different number of channels or of spatial axes;
* a different resolution, unless the model family transfers across resolutions
  (:data:`RESOLUTION_TRANSFER`: the FNO, whose spectral weights act on the kept Fourier modes
  of any grid that resolves them); a transfer is recorded in the report;
* the run's own training data (the same file, or a file whose first trajectory equals the
  training file's), unless ``allow_train_split=true``; then the report says so.

Conditioning parameters outside the training range (``derived.cond_range``) only warn.
Non-finite data are refused by :func:`pdekit.evaluation.runner.load_eval_data`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from pdekit.data import open_trajectories

#: Model classes (``_target_`` of the run's model) that may be evaluated at a resolution other
#: than the training one. Everything else (U-Nets, SineNet, MP-PDE, PDE-Refiner, user models)
#: learnt filters in grid points, so a different grid changes what they compute: refused.
RESOLUTION_TRANSFER = ("pdekit.models.fno.FNO",)


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What a run was trained on, as far as its config and training file tell."""

    pde: str | None
    channels: int | None
    spatial_shape: tuple[int, ...] | None
    model: str
    modes: int | None
    train_path: Path | None
    train_head: str | None  # digest of the training file's first trajectory
    cond_range: dict

    @classmethod
    def of_run(cls, rcfg) -> RunFacts:
        """Facts of a loaded run config (``load_run``); the training file is read when it is
        still there (its ``pde`` attribute and first trajectory)."""
        derived = rcfg.get("derived") or {}
        shape = derived.get("spatial_shape")
        train = rcfg.data.get("train_path")
        pde, head = _train_file_facts(Path(str(train))) if train else (None, None)
        model = rcfg.get("model") or {}
        modes = model.get("modes")
        ranges = derived.get("cond_range") or {}
        return cls(pde=str(derived.get("pde") or pde) if (derived.get("pde") or pde) else None,
                   channels=int(derived["channels"]) if "channels" in derived else None,
                   spatial_shape=tuple(int(n) for n in shape) if shape is not None else None,
                   model=str(model.get("_target_", "?")),
                   modes=int(modes) if isinstance(modes, int) else None,
                   train_path=Path(str(train)) if train else None, train_head=head,
                   cond_range={str(k): [float(v[0]), float(v[1])] for k, v in ranges.items()})


def _train_file_facts(path: Path) -> tuple[str | None, str | None]:
    """``(pde, digest of trajectory 0)`` of the training file, ``(None, None)`` if unreadable."""
    try:
        with open_trajectories(path) as tr:
            return tr.pde, trajectory_digest(tr.u, 0)
    except (OSError, ValueError):
        return None, None


def trajectory_digest(u, index: int) -> str:
    """sha256 of trajectory ``index`` of a ``(N, T, C, *S)`` array as float32, with its shape."""
    row = np.ascontiguousarray(np.asarray(u[index]), np.float32)
    return hashlib.sha256(row.tobytes() + repr(row.shape).encode()).hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_pde(facts: RunFacts, tr, path) -> dict:
    """Refuse data of another PDE preset; ``{"run", "data", "checked"}``."""
    if facts.pde is not None and tr.pde != facts.pde:
        raise ValueError(f"{path} holds {tr.pde!r} data but the run was trained on "
                         f"{facts.pde!r}; evaluate it on {facts.pde!r} data")
    return {"run": facts.pde, "data": tr.pde, "checked": facts.pde is not None}


def check_channels(facts: RunFacts, tr, path) -> dict:
    """Refuse another number of channels or of spatial axes."""
    if facts.channels is not None and tr.channels != facts.channels:
        raise ValueError(f"{path} has {tr.channels} channel(s) but the run was trained on "
                         f"{facts.channels}")
    if facts.spatial_shape is not None and tr.spatial_dims != len(facts.spatial_shape):
        raise ValueError(f"{path} is {tr.spatial_dims}D but the run was trained on "
                         f"{len(facts.spatial_shape)}D data")
    return {"run": facts.channels, "data": tr.channels}


def _shape_text(shape) -> str:
    return "x".join(str(n) for n in shape)


def check_resolution(facts: RunFacts, shape, path) -> dict:
    """Refuse another resolution unless the model transfers (:data:`RESOLUTION_TRANSFER`)."""
    shape = tuple(int(n) for n in shape)
    run = facts.spatial_shape
    out = {"run": list(run) if run is not None else None, "data": list(shape),
           "transfer": False, "checked": run is not None}
    if run is None or shape == run:
        return out
    name = facts.model.rsplit(".", 1)[-1]
    if facts.model not in RESOLUTION_TRANSFER:
        raise ValueError(f"{path} has resolution {_shape_text(shape)} but the run was trained "
                         f"at {_shape_text(run)}; {name} does not transfer across resolutions")
    if facts.modes is not None and min(shape) < 2 * facts.modes:
        raise ValueError(f"{path} has resolution {_shape_text(shape)} (trained at "
                         f"{_shape_text(run)}); {name} with modes={facts.modes} needs every "
                         f"axis >= {2 * facts.modes}")
    out["transfer"] = True
    return out


def check_not_training_data(facts: RunFacts, tr, path, *, allow: bool) -> bool:
    """Whether ``tr`` is the run's training data (same file or same first trajectory); refuse
    it unless ``allow``."""
    same = facts.train_path is not None and _same_file(Path(path), facts.train_path)
    if not same and facts.train_head is not None and tr.num_trajectories:
        same = trajectory_digest(tr.u, 0) == facts.train_head
    if same and not allow:
        raise ValueError(f"{path} is the run's training data; scores on it do not measure "
                         "generalisation (pass allow_train_split=true to evaluate anyway)")
    return same


def check_against_run(facts: RunFacts, tr, path, *, allow_train_split: bool = False) -> dict:
    """Every refusal of this module on an open file ``tr``; returns the report's ``checks``."""
    return {
        "pde": check_pde(facts, tr, path),
        "channels": check_channels(facts, tr, path),
        "resolution": check_resolution(facts, tr.spatial_shape, path),
        "train_split": check_not_training_data(facts, tr, path, allow=allow_train_split),
    }


def _values_of(key: str, cond_keys, cond: np.ndarray, params: dict):
    """Per-trajectory values of a conditioning key: the model's ``cond`` column when the run
    conditions on it (for ``dt`` the model step), else ``params[key]``."""
    keys = list(cond_keys)
    if key in keys:
        return np.asarray(cond, np.float64)[:, keys.index(key)]
    value = params.get(key)
    if value is None or np.ndim(value) != 1:
        return None
    return np.asarray(value, np.float64)


def cond_outside(facts: RunFacts, cond_keys, cond, params) -> list[dict]:
    """Conditioning keys whose values leave the training range ``derived.cond_range``:
    ``[{"key", "range", "outside", "of", "min", "max"}]`` (keys within range are left out).
    A relative 1e-6 of the range (float32 round-off) counts as inside."""
    found = []
    for key, (lo, hi) in facts.cond_range.items():
        values = _values_of(key, cond_keys, cond, params)
        if values is None or not values.size:
            continue
        tol = 1e-6 * max(abs(lo), abs(hi), hi - lo, 1e-30)
        n_out = int(np.sum((values < lo - tol) | (values > hi + tol)))
        if n_out:
            found.append({"key": key, "range": [lo, hi], "outside": n_out, "of": int(values.size),
                          "min": float(values.min()), "max": float(values.max())})
    return found


def cond_warning(entry: dict) -> str:
    """One line for a :func:`cond_outside` entry."""
    lo, hi = entry["range"]
    return (f"{entry['key']} outside the training range [{lo:.6g}, {hi:.6g}] for "
            f"{entry['outside']} of {entry['of']} trajectories (data: {entry['min']:.6g} .. "
            f"{entry['max']:.6g})")


def finite_or_raise(name: str, values, path) -> None:
    """Refuse non-finite values in ``values`` (first axis = trajectories)."""
    arr = np.asarray(values)
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1) if arr.size else np.zeros(0, bool)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(f"{path}: non-finite values (NaN/Inf) in {name} of {idx.size} of "
                         f"{arr.shape[0]} trajectories (first: {int(idx[0])}); refusing to "
                         "evaluate on them")
