"""Numerical baseline: the reference solver run at the model's coarse resolution.

The baseline starts from the same state as the model rollout (the last input frame,
spectrally resampled from the data grid to ``N``), steps with the model's step ``dt`` split
into ``inner_steps`` solver sub-steps, and its frames are resampled back to the data grid so
that every metric compares like with like. Supported PDEs: ``ks*``, ``burgers*`` (with the
per-trajectory sine forcing when the data has ``forcing_*`` parameters) — chosen from the
data file's ``pde`` attribute (the preset name).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def baseline_kind(pde: str) -> str | None:
    """``"ks"``, ``"burgers"`` or None (no baseline) from a PDE preset name."""
    name = str(pde).lower()
    if name.startswith("ks") or "kuramoto" in name:
        return "ks"
    if name.startswith("burgers"):
        return "burgers"
    return None


def _param(params: dict, name: str, n: int, default=None) -> np.ndarray:
    if name in params:
        return np.asarray(params[name], dtype=np.float64)
    if default is None:
        raise ValueError(f"the baseline needs the per-trajectory parameter {name!r}; the data "
                         f"has {', '.join(sorted(params))}")
    return np.full(n, float(default))


def _make_stepper(kind: str, p: dict, N: int, dt):
    from pdekit.solvers import Burgers, KuramotoSivashinsky, SineForcing

    if kind == "ks":
        return KuramotoSivashinsky(L=p["L"], N=N, dt=dt, nu=p["nu"])
    forcing = None
    if "forcing_amplitude" in p:
        forcing = SineForcing(p["forcing_amplitude"], p["forcing_omega"],
                              p["forcing_wavenumber"], p["forcing_phase"], p["L"])
    return Burgers(L=p["L"], N=N, dt=dt, nu=p["nu"], forcing=forcing)


@functools.lru_cache(maxsize=16)
def baseline_fn(kind: str, N: int, n_data: int, n_steps: int, inner_steps: int):
    """Jitted ``(u0 (B, C, n_data), params, dt (B,), t0 (B,)) -> (B, n_steps, C, n_data)``."""
    from pdekit.solvers import resample, trajectory

    def one(u0, p, dt, t0):
        stepper = _make_stepper(kind, p, N, dt / inner_steps)
        u = resample(u0[0], N).astype(stepper.dt.dtype)
        traj = trajectory(stepper, u, n_steps + 1, inner_steps=inner_steps, t0=t0)[1:]
        return resample(traj, n_data)[:, None].astype(u0.dtype)

    return jax.jit(jax.vmap(one))


def run_baseline(
    pde: str,
    u0: Float[Array, "B C N"],
    params: dict[str, np.ndarray],
    dt: Float[Array, " B"],
    n_steps: int,
    *,
    resolution: int,
    inner_steps: int = 1,
    t0: Float[Array, " B"] | None = None,
) -> tuple[np.ndarray, dict]:
    """Solve ``n_steps`` model steps from the physical states ``u0`` at ``resolution`` points.

    Returns the predicted frames ``(B, n_steps, C, N_data)`` on the data grid and timings:
    ``{"wall_s": steady-state seconds of one solve (after compilation), "compile_s": first call
    minus wall_s, "resolution", "inner_steps", "solver_dt_mean"}``.
    """
    kind = baseline_kind(pde)
    if kind is None:
        raise ValueError(f"no numerical baseline for pde {pde!r} (supported: ks*, burgers*)")
    u0 = np.asarray(u0, np.float32)
    if u0.ndim != 3 or u0.shape[1] != 1:
        raise ValueError(f"the {kind} baseline needs 1-channel 1D states, got {u0.shape[1:]}")
    if int(inner_steps) < 1 or int(resolution) < 8:
        raise ValueError(f"baseline inner_steps must be >= 1 and resolution >= 8, got "
                         f"{inner_steps} and {resolution}")
    b = u0.shape[0]
    p = {"L": _param(params, "L", b), "nu": _param(params, "nu", b, default=1.0 if kind == "ks" else None)}
    if kind == "burgers" and "forcing_amplitude" in params:
        for name in ("forcing_amplitude", "forcing_omega", "forcing_wavenumber", "forcing_phase"):
            p[name] = np.asarray(params[name], np.float64)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    p = {k: jnp.asarray(v, dtype) for k, v in p.items()}
    dt = jnp.asarray(np.broadcast_to(np.asarray(dt, np.float64), (b,)), dtype)
    t0 = jnp.zeros(b, dtype) if t0 is None else jnp.asarray(t0, dtype)
    fn = baseline_fn(kind, int(resolution), u0.shape[-1], int(n_steps), int(inner_steps))
    from pdekit.evaluation.rollout import shard_batch

    args = shard_batch(jnp.asarray(u0), p, dt, t0) if b > 1 else (jnp.asarray(u0), p, dt, t0)
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    wall = time.perf_counter() - start
    info = {"resolution": int(resolution), "inner_steps": int(inner_steps), "wall_s": wall,
            "compile_s": max(first - wall, 0.0), "solver_dt_mean": float(jnp.mean(dt)) / int(inner_steps)}
    return np.asarray(out), info
