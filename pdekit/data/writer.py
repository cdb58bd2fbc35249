"""Write a split of a preset to HDF5: batched solves, resumable, atomic.

The file is built under ``<output>.tmp``. After every batch the trajectories are flushed and
the root attribute ``completed_trajectories`` is advanced, so a run killed at any moment leaves
only the ``.tmp`` file; re-running the same command resumes after the last flushed batch.
Trajectory keys depend on (preset, split, seed, index) only, so resumed runs write the same
content (every dataset and attribute) as uninterrupted ones, though not the same file bytes:
HDF5's internal layout depends on the write history. Statistics (``stats/``) and
``complete=True`` are written last, then the file is renamed to ``<output>``.

An exclusive lock on ``<output>.lock`` (removed when done) keeps a second process off the
same output, and free disk space is checked before the file is created and before every
batch (docs/safety.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import jax
import numpy as np
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from pdekit import __version__
from pdekit._io import ExclusiveLock, check_free_space
from pdekit._memory import bytes_limit
from pdekit.data.protocols import Protocol, build_protocol
from pdekit.data.protocols_eqs import make_batch_solver
from pdekit.data.schema import COMPLETE_ATTR, PROGRESS_ATTR, SCHEMA_VERSION
from pdekit.data.seeds import split_seed
from pdekit.data.stats import StatsAccumulator
from pdekit.data.stats_io import write_stats

#: Config keys that may change between an interrupted run and its resumption.
VOLATILE_KEYS = ("overwrite", "batch_size", "progress")
MAX_AUTO_BATCH = 512
_DTYPES = {"float32": np.float32, "float64": np.float64}


def x64(enabled: bool):
    """Context manager enabling float64 in JAX (``jax.enable_x64`` across versions)."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # pragma: no cover - older/newer layouts
        from jax.experimental import enable_x64 as ctx  # type: ignore[no-redef]
    return ctx(bool(enabled))


def device_memory_budget() -> int:
    """Bytes a batch may use: 40% of the accelerator's memory, or 1 GiB on CPU."""
    limit = bytes_limit()
    return int(0.4 * limit) if limit else 1 << 30


def auto_batch_size(p: Protocol, solve_itemsize: int = 8, store_itemsize: int = 4) -> int:
    """Largest batch fitting :func:`device_memory_budget`, capped and balanced over the split."""
    per = p.bytes_per_trajectory(solve_itemsize, store_itemsize)
    cap = max(1, min(p.num_trajectories, MAX_AUTO_BATCH, device_memory_budget() // per))
    batches = math.ceil(p.num_trajectories / cap)
    return math.ceil(p.num_trajectories / batches)


def _to_yaml(config: Mapping[str, Any]) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(dict(config)))


def _stable(config: Mapping[str, Any]) -> dict:
    return {k: v for k, v in config.items() if k not in VOLATILE_KEYS}


def _choice(config: Mapping[str, Any], key: str, default: str) -> type:
    value = str(config.get(key, default))
    if value not in _DTYPES:
        raise ValueError(f"{key}={value!r} is not supported; use float32 or float64")
    return _DTYPES[value]


def _open_partial(tmp: Path, config: Mapping[str, Any]) -> h5py.File | None:
    """Reopen an interrupted run's temp file if it was written by the same config."""
    try:
        f = h5py.File(tmp, "r+")
        stored = OmegaConf.to_container(OmegaConf.create(str(f.attrs["config"])))
        done = int(f.attrs[PROGRESS_ATTR])
    except (OSError, KeyError, ValueError) as err:
        warnings.warn(f"{tmp}: unreadable partial file ({err}); starting over", stacklevel=3)
        with contextlib.suppress(NameError):
            f.close()
        tmp.unlink()
        return None
    if _stable(stored) != _stable(config):
        f.close()
        raise ValueError(f"{tmp} is a partial run of a different configuration; delete it or "
                         "pass overwrite=true to start over")
    if done > f["u"].shape[0]:
        f.close()
        raise ValueError(f"{tmp}: corrupt progress record ({done} trajectories); delete it")
    return f


def _strings(values) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=h5py.string_dtype())


def _create(tmp: Path, p: Protocol, config: Mapping[str, Any], seed: int, batch: int,
            store_dtype) -> h5py.File:
    f = h5py.File(tmp, "w")
    n = p.num_trajectories
    shape = (n,) + p.stored_shape
    f.create_dataset("u", shape=shape, dtype=store_dtype, chunks=(1,) + p.stored_shape,
                     fillvalue=np.nan)
    a = f.attrs
    a["pde"] = p.name
    a["dt"] = np.nan  # replaced by the saved interval when the file is finished
    a["spatial_dims"] = p.spatial_dims
    a["schema_version"] = SCHEMA_VERSION
    a["config"] = _to_yaml(config)
    a["created_by"] = f"pdekit {__version__}"
    a["split"] = p.split
    a.update(p.solver_attrs())  # equation, order, dealias, forcing
    a["fields"] = _strings(p.fields)
    a["split_seed"] = seed
    a["solve_resolution"] = p.solve_resolution
    a["inner_steps"] = p.inner_steps
    a["frames_solved"] = p.frames
    a["burn_in_frames"] = p.burn_in
    a["stride"] = p.stride
    a["cond_keys"] = _strings(p.cond_keys)
    a["dt_varies"] = p.dt_varies
    a["batch_size"] = batch
    a[PROGRESS_ATTR] = 0
    a[COMPLETE_ATTR] = False
    f.create_group("params")
    return f


def _write_batch(f: h5py.File, p: Protocol, i0: int, u, params, t) -> None:
    i1 = i0 + u.shape[0]
    f["u"][i0:i1] = u
    g = f["params"]
    for name, value in params.items():
        if name not in g:
            g.create_dataset(name, shape=(p.num_trajectories,) + value.shape[1:],
                             dtype=np.float64, fillvalue=np.nan)
        g[name][i0:i1] = value
    per_traj_x = isinstance(p.options.get("domain_length"), (list, tuple))
    names = ("x", "y")[: p.spatial_dims]
    for name in names:
        grid = np.arange(p.resolution)[None, :] * (params["L"][:, None] / p.resolution)
        if per_traj_x:
            ds = f.require_dataset(name, (p.num_trajectories, p.resolution), np.float64)
            ds[i0:i1] = grid
        elif name not in f:
            f.create_dataset(name, data=grid[0])
    if p.dt_varies:
        f.require_dataset("t", (p.num_trajectories, p.keep), np.float64)[i0:i1] = t
    elif "t" not in f:
        f.create_dataset("t", data=t[0].astype(np.float64))


def check_finite_solve(p: Protocol, u, indices) -> None:
    """Refuse solved trajectories ``u`` ``(n, T, C, *S)`` holding NaN or Inf; ``indices`` are
    their trajectory numbers. The one check of an unstable solve (``pdekit generate`` and
    ``data.source=online`` training)."""
    bad = ~np.isfinite(np.asarray(u).reshape(len(u), -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"the solver produced non-finite values in trajectories "
            f"{np.asarray(indices)[bad][:5].tolist()}: the time step is too large; "
            f"raise pde.inner_steps (now {p.inner_steps}) or lower pde.cfl"
        )


def generate_dataset(
    config: Mapping[str, Any],
    *,
    on_batch: Callable[[int], None] | None = None,
    progress: bool = True,
    timings: dict[str, float] | None = None,
) -> Path:
    """Generate ``config["output"]`` from a resolved ``generate`` config (plain mapping).

    Keys: ``pde`` (preset mapping), ``split``, ``num_trajectories`` (None = preset size),
    ``output``, ``seed``, ``batch_size`` ("auto" or int), ``overwrite``, ``precision``,
    ``solve_precision``. ``on_batch(done)`` is called after each flushed batch. ``timings``,
    if given, receives the seconds spent in ``solve`` (compiled solves + copy to host),
    ``write`` (HDF5) and ``stats``.
    """
    timings = {} if timings is None else timings
    timings.update(solve=0.0, write=0.0, stats=0.0)
    config = dict(config)
    out = Path(str(config["output"]))
    _refuse_existing(out, config)
    store_dtype = _choice(config, "precision", "float32")
    solve_dtype = _choice(config, "solve_precision", "float64")
    p = build_protocol(config["pde"], str(config["split"]), config.get("num_trajectories"))
    seed = split_seed(p.name, p.split, int(config.get("seed", 0)))
    batch_cfg = config.get("batch_size", "auto")
    if batch_cfg not in (None, "auto") and int(batch_cfg) < 1:
        raise ValueError(f"batch_size must be a positive integer or auto, got {batch_cfg!r}")
    if not out.with_name(out.name + ".tmp").exists():  # a resume is checked once reopened
        _check_space(out.parent, p, p.num_trajectories, store_dtype, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with ExclusiveLock(out.with_name(out.name + ".lock"), f"output {out}", remove=True):
        _refuse_existing(out, config)  # another process may have finished it meanwhile
        return _generate_locked(config, out, p, seed, batch_cfg, store_dtype, solve_dtype,
                                on_batch, progress, timings)


def _refuse_existing(out: Path, config: Mapping[str, Any]) -> None:
    if out.exists() and not config.get("overwrite", False):
        raise FileExistsError(f"{out} exists; pass overwrite=true to replace it")


def _check_space(where, p: Protocol, n: int, store_dtype, out: Path) -> None:
    need = n * stored_bytes_per_trajectory(p, np.dtype(store_dtype).itemsize)
    check_free_space(where, need, f"{out} ({n} of {p.num_trajectories} trajectories to write)")


def stored_bytes_per_trajectory(p: Protocol, itemsize: int) -> int:
    """Bytes one trajectory takes in the file: ``u`` plus its parameters, grid and times."""
    return math.prod(p.stored_shape) * itemsize + 8 * (p.keep + p.resolution + 64)


def _generate_locked(config, out: Path, p: Protocol, seed: int, batch_cfg, store_dtype,
                     solve_dtype, on_batch, progress, timings) -> Path:
    """The part of :func:`generate_dataset` run while holding ``<output>.lock``."""
    tmp = out.with_name(out.name + ".tmp")
    f = None
    if tmp.exists():
        if config.get("overwrite", False):
            tmp.unlink()
        else:
            f = _open_partial(tmp, config)
    if f is None:
        batch = (auto_batch_size(p, np.dtype(solve_dtype).itemsize, np.dtype(store_dtype).itemsize)
                 if batch_cfg in (None, "auto") else int(batch_cfg))
        f = _create(tmp, p, config, seed, min(batch, p.num_trajectories), store_dtype)
    batch = (int(f.attrs["batch_size"]) if batch_cfg in (None, "auto")
             else min(int(batch_cfg), p.num_trajectories))
    try:
        try:
            _check_space(tmp, p, p.num_trajectories - int(f.attrs[PROGRESS_ATTR]), store_dtype, out)
            acc = _resumed_stats(f, p, timings)
            _fill(f, p, seed, batch, store_dtype, solve_dtype, on_batch, progress, timings, acc)
        except BaseException:
            if int(f.attrs[PROGRESS_ATTR]) == 0:  # nothing worth resuming
                f.close()
                tmp.unlink(missing_ok=True)
            raise
        write_stats(f, acc.stats())
        dts = f["params"]["dt"][()]
        f.attrs["dt"] = float(dts.mean() if p.dt_varies else dts[0])
        f.attrs[COMPLETE_ATTR] = True
        f.flush()
    finally:
        f.close()
    os.replace(tmp, out)
    return out


def _resumed_stats(f, p: Protocol, timings) -> StatsAccumulator:
    """The statistics accumulator, fed the batches a resumed file already holds (in the
    blocks they were written in, so a resumed file's statistics equal an uninterrupted one's)."""
    clock = time.perf_counter()
    acc = StatsAccumulator(p.channels, spatial_dims=p.spatial_dims,
                           diff_stride=min(p.stride, p.keep - 1) if p.keep > 1 else 1)
    done, batch = int(f.attrs[PROGRESS_ATTR]), int(f.attrs["batch_size"])
    for i0 in range(0, done, batch):
        acc.add(f["u"][i0 : min(i0 + batch, done)])
    timings["stats"] += time.perf_counter() - clock
    return acc


def _fill(f, p: Protocol, seed: int, batch: int, store_dtype, solve_dtype, on_batch, progress,
          timings, acc: StatsAccumulator):
    n, done = p.num_trajectories, int(f.attrs[PROGRESS_ATTR])
    if done >= n:
        return
    with x64(solve_dtype == np.float64):
        solve = make_batch_solver(p, seed, store_dtype=store_dtype)
        bar = tqdm(total=n, initial=done, unit="traj", desc=f"{p.name}/{p.split}",
                   disable=not progress, dynamic_ncols=True)
        with bar:
            for i0 in range(done, n, batch):
                i1 = min(i0 + batch, n)
                # pad the last batch to the common size: one compilation for the whole run
                idx = np.minimum(np.arange(i0, i0 + batch), n - 1)
                # a full disk makes HDF5 crash the process: stop cleanly (resumable) instead
                check_free_space(f.filename, (i1 - i0) * stored_bytes_per_trajectory(
                    p, np.dtype(store_dtype).itemsize), f"the next batch of {f.filename}")
                clock = time.perf_counter()
                u, params, t = solve(idx)
                timings["solve"] += time.perf_counter() - clock
                u, t = u[: i1 - i0], t[: i1 - i0]
                params = {k: v[: i1 - i0] for k, v in params.items()}
                check_finite_solve(p, u, np.arange(i0, i1))
                clock = time.perf_counter()
                _write_batch(f, p, i0, u, params, t)
                f.flush()
                timings["write"] += time.perf_counter() - clock
                clock = time.perf_counter()
                acc.add(np.asarray(u, store_dtype))  # the values as stored
                timings["stats"] += time.perf_counter() - clock
                clock = time.perf_counter()
                f.attrs[PROGRESS_ATTR] = i1
                f.flush()
                timings["write"] += time.perf_counter() - clock
                bar.update(i1 - i0)
                if on_batch is not None:
                    on_batch(i1)
