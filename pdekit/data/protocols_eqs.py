"""Sampling and solving a :class:`~pdekit.data.protocols.Protocol`: per equation, batched.

:func:`sample_and_solve` samples the parameters and initial condition of ONE trajectory and
solves it with the stepper of the equation catalogue (:func:`pdekit.solvers.stepper_for`, the
same one the numerical baseline rebuilds from the file's attributes). It returns
``(u, params)``: ``u`` is ``(keep, C, *spatial)`` at the stored resolution and ``params`` maps
parameter names to per-trajectory scalars (or ``(J,)`` coefficient vectors). Keys are always
split into the same number of sub-keys, so changing one setting (e.g. fixing ``nu``) does not
change the other sampled quantities.

:func:`make_batch_solver` returns a function ``indices -> (u, params, t)`` that samples and
solves a batch of trajectories in ONE compiled call (``jax.vmap`` over per-trajectory
parameters), with the key of each trajectory derived from the split seed and its index only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from pdekit.data.protocols import Protocol, check_range, draw
from pdekit.data.seeds import trajectory_key
from pdekit.solvers import (
    gaussian_random_field,
    random_vorticity,
    resample,
    sine_sum,
    stepper_for,
    trajectory,
)

_NUM_SUBKEYS = 8
#: Fine-grid frames held at once per trajectory while saving (see :func:`evolve`).
CHUNK_BYTES = 8 << 20


def evolve(stepper, u0: Array, p: Protocol, dt_save: Array, store: Callable[[Array], Array]):
    """Burn in, then save ``p.keep`` frames (passed through ``store``) of ONE trajectory.

    The burn-in is one long ``trajectory`` call keeping only its last state. Kept frames are
    produced in chunks (a ``lax.scan`` over ``trajectory`` calls) so that at most
    :data:`CHUNK_BYTES` of fine-grid frames per trajectory exist at once; ``store`` (resampling
    to the stored grid, batched over leading axes) is applied per chunk.
    """
    u = u0
    if p.burn_in:
        u = trajectory(stepper, u0, 2, inner_steps=p.burn_in * p.inner_steps)[1]
    t_start = p.burn_in * dt_save
    first = store(u)[None]
    n_rest = p.keep - 1
    if n_rest == 0:
        return first
    frame_bytes = p.solve_resolution**p.spatial_dims * u.dtype.itemsize
    chunk = max(1, min(n_rest, CHUNK_BYTES // frame_bytes))
    full, rem = divmod(n_rest, chunk)

    def run(state, t0, n):
        frames = trajectory(stepper, state, n + 1, inner_steps=p.inner_steps, t0=t0)
        return frames[-1], store(frames[1:])

    def body(state, k):
        return run(state, t_start + k * chunk * dt_save, chunk)

    u, rest = jax.lax.scan(body, u, jnp.arange(full))
    parts = [first, rest.reshape((full * chunk,) + rest.shape[2:])]
    if rem:
        parts.append(run(u, t_start + full * chunk * dt_save, rem)[1])
    return jnp.concatenate(parts, axis=0)


def _stepper(p: Protocol, params: dict[str, Array], **ns2d):
    """The catalogue's stepper of ``p.equation`` for one trajectory's ``params``."""
    return stepper_for(p.equation, params, resolution=p.solve_resolution, dt=params["dt"] / p.inner_steps,
                       order=p.order, dealias=p.dealias, **ns2d)


def _store(p: Protocol):
    def store(u):
        if p.resolution != p.solve_resolution:
            u = resample(u, p.resolution, p.spatial_dims)
        return jnp.expand_dims(u, -p.spatial_dims - 1)  # channel axis

    return store


def _common(p: Protocol, keys) -> dict[str, Array]:
    opts = p.options
    length = draw(keys[0], check_range("domain_length", opts.get("domain_length", 1.0),
                                       positive=True))
    final_time = draw(keys[1], p.final_time)
    nu = draw(keys[2], check_range("nu", opts["nu"], positive=True))
    return {
        "L": length,
        "nu": nu,
        "final_time": final_time,
        "dt": final_time / (p.frames - 1),
        "dx": length / p.resolution,
    }


def _ks(p: Protocol, key):
    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    ic = dict(p.options.get("initial_condition", {}))
    u0 = sine_sum(
        keys[3],
        resolution=p.solve_resolution,
        L=params["L"],
        num_terms=int(ic.get("num_terms", 10)),
        amplitude=float(ic.get("amplitude", 0.5)),
        wavenumbers=tuple(int(w) for w in ic.get("wavenumbers", (1, 2))),
    )
    return evolve(_stepper(p, params), u0, p, params["dt"], _store(p)), params


def _grf(p: Protocol, key, length, ic, dims):
    return gaussian_random_field(
        key, resolution=p.solve_resolution, L=length, dims=dims, scale=float(ic["scale"]),
        tau=float(ic["tau"]), alpha=float(ic["alpha"]),
    )


def _burgers(p: Protocol, key):
    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    ic = dict(p.options.get("initial_condition", {"type": "grf"}))
    fcfg = p.forcing
    if fcfg:
        fk = jax.random.split(keys[4], 4)
        terms = int(fcfg.get("terms", 5))
        amp, omega = float(fcfg.get("amplitude", 0.5)), float(fcfg.get("omega", 0.4))
        waves = jnp.asarray([float(w) for w in fcfg.get("wavenumbers", (1, 2, 3))])
        params.update({
            "forcing_amplitude": jax.random.uniform(fk[0], (terms,), minval=-amp, maxval=amp),
            "forcing_omega": jax.random.uniform(fk[1], (terms,), minval=-omega, maxval=omega),
            "forcing_wavenumber": jax.random.choice(fk[2], waves, (terms,)),
            "forcing_phase": jax.random.uniform(fk[3], (terms,), maxval=2.0 * math.pi),
        })
    stepper = _stepper(p, params)
    kind = ic.get("type", "grf")
    if kind == "grf":
        u0 = _grf(p, keys[3], params["L"], ic, 1)
    elif kind == "forcing":
        if stepper.forcing is None:
            raise ValueError("pde.initial_condition.type=forcing needs a pde.forcing entry")
        u0 = stepper.forcing(jnp.zeros_like(params["L"]), stepper.coordinates())
    else:
        raise ValueError(f"pde.initial_condition.type={kind!r} is unknown; use grf or forcing")
    return evolve(stepper, u0, p, params["dt"], _store(p)), params


def _ns2d(p: Protocol, key):
    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    params["drag"] = draw(keys[5], check_range("drag", p.options.get("drag", 0.0)))
    n, length = p.solve_resolution, params["L"]
    ic = dict(p.options.get("initial_condition", {"type": "random_vorticity"}))
    kind = ic.get("type", "random_vorticity")
    if kind == "random_vorticity":
        w0 = random_vorticity(keys[3], resolution=n, L=length,
                              peak_wavenumber=float(ic.get("peak_wavenumber", 4.0)),
                              max_speed=float(ic.get("max_speed", 7.0)))
    elif kind == "grf":
        w0 = _grf(p, keys[3], length, ic, 2)
    else:
        raise ValueError(f"pde.initial_condition.type={kind!r} is unknown; "
                         "use random_vorticity or grf")
    stepper = _stepper(p, params, forcing=p.forcing, max_velocity=p.options.get("max_velocity"))
    return evolve(stepper, w0, p, params["dt"], _store(p)), params


def sample_and_solve(p: Protocol, key) -> tuple[Array, dict[str, Array]]:
    """Sample the parameters and initial condition of one trajectory and solve it."""
    if p.equation == "ks":
        return _ks(p, key)
    if p.equation == "burgers":
        return _burgers(p, key)
    if p.equation == "ns2d":
        return _ns2d(p, key)
    raise ValueError(f"unknown equation {p.equation!r}")


class _ByValue:
    """Hashable wrapper comparing protocols by the settings that shape the computation."""

    def __init__(self, p: Protocol):
        self.p = p
        fixed = dataclasses.replace(p, num_trajectories=0, split="")
        self.key = json.dumps(dataclasses.asdict(fixed), sort_keys=True, default=str)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _ByValue) and self.key == other.key


@functools.lru_cache(maxsize=8)
def _compiled(pv: _ByValue, store_dtype: str):
    """One jitted, vmapped solver per protocol (re-used by repeated and resumed runs)."""
    p = pv.p

    def one(seed, index):
        u, params = sample_and_solve(p, trajectory_key(seed, index))
        t = (p.burn_in + jnp.arange(p.keep)) * params["dt"]
        return u.astype(store_dtype), params, t

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def make_batch_solver(p: Protocol, seed: int, *, store_dtype=np.float32):
    """``solve(indices) -> (u, params, t)`` for a batch of trajectory indices (numpy, int).

    ``u`` is ``(B, keep, C, *spatial)`` in ``store_dtype``, ``params`` maps names to ``(B, ...)``
    arrays, ``t`` is ``(B, keep)``. Compiled once per protocol and batch size; run it inside
    ``jax.enable_x64(True)`` for a float64 solve.
    """
    batched = _compiled(_ByValue(p), np.dtype(store_dtype).name)

    def solve(indices: np.ndarray):
        u, params, t = batched(jnp.asarray(seed, dtype=jnp.uint32),
                               jnp.asarray(indices, dtype=jnp.int32))
        return np.asarray(u), {k: np.asarray(v) for k, v in params.items()}, np.asarray(t)

    return solve
