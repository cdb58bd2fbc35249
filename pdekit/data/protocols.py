"""Data protocols: a preset config → sampled parameters + initial conditions + a batched solve.

A :class:`Protocol` is built from one ``configs/pde/<preset>.yaml`` mapping and a split name.
:func:`make_batch_solver` returns a function ``indices -> (u, params, t)`` that samples and
solves a batch of trajectories in ONE compiled call (``jax.vmap`` over per-trajectory
parameters), with the key of each trajectory derived from the split seed and its index only.

Frame bookkeeping (all presets): ``frames`` frames are saved uniformly on ``[0, T]`` (so the
saved interval is ``T / (frames - 1)``), ``inner_steps`` solver steps per saved frame, and the
first ``frames - keep`` frames (burn-in / warm-up) are never stored.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

SPLITS = ("train", "valid", "test")
_EQUATIONS = ("ks", "burgers", "ns2d")
#: Fine-grid frames held at once per trajectory while saving (see :func:`evolve`).
CHUNK_BYTES = 8 << 20


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One split of one preset, with every number resolved (see ``configs/pde/*.yaml``)."""

    name: str
    equation: str
    split: str
    num_trajectories: int
    spatial_dims: int
    fields: tuple[str, ...]
    solve_resolution: int
    resolution: int
    frames: int
    keep: int
    inner_steps: int
    model_stride: int
    cond_keys: tuple[str, ...]
    final_time: float | tuple[float, float]
    options: Mapping[str, Any]  # the equation-specific entries of the preset

    @property
    def channels(self) -> int:
        return len(self.fields)

    @property
    def burn_in(self) -> int:
        """Number of leading saved frames that are solved but not stored."""
        return self.frames - self.keep

    @property
    def dt_varies(self) -> bool:
        """Whether the saved interval differs between trajectories (random final time)."""
        return isinstance(self.final_time, tuple)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """Shape of one stored trajectory ``(T, C, *spatial)``."""
        return (self.keep, self.channels) + (self.resolution,) * self.spatial_dims

    def bytes_per_trajectory(self, solve_itemsize: int = 8, store_itemsize: int = 4) -> int:
        """Rough device-memory estimate of one trajectory in a batched solve."""
        state = self.solve_resolution**self.spatial_dims
        work = 48 * state * 2 * solve_itemsize  # ETDRK stages, FFT buffers (complex)
        out = math.prod(self.stored_shape) * (store_itemsize + solve_itemsize)
        return work + out


def is_range(spec: Any) -> bool:
    """A ``[low, high]`` pair means "uniform per trajectory"; a scalar means fixed."""
    return isinstance(spec, (list, tuple)) and len(spec) == 2


def check_range(name: str, spec: Any, *, positive: bool = False) -> float | tuple[float, float]:
    """Validate a scalar or ``[low, high]`` entry and return it as float / tuple of floats."""
    try:
        value = (float(spec[0]), float(spec[1])) if is_range(spec) else float(spec)
    except (TypeError, ValueError):
        raise ValueError(
            f"pde.{name} must be a number or a [low, high] pair, got {spec!r}"
        ) from None
    lows = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and value[0] > value[1]:
        raise ValueError(f"pde.{name}: low {value[0]} is larger than high {value[1]}")
    if positive and min(lows) <= 0:
        raise ValueError(f"pde.{name} must be positive, got {spec!r}")
    return value


def draw(key: Array, spec: float | tuple[float, float]) -> Float[Array, ""]:
    """Sample a scalar: uniform on ``[low, high)`` for a range, the constant otherwise."""
    dtype = default_float()
    if isinstance(spec, tuple):
        return jax.random.uniform(key, (), minval=spec[0], maxval=spec[1], dtype=dtype)
    return jnp.asarray(spec, dtype=dtype)


def default_float():
    """float64 inside ``jax.enable_x64(True)``, float32 otherwise."""
    return jnp.asarray(0.0).dtype


def _upper(spec: float | tuple[float, float]) -> float:
    return spec[1] if isinstance(spec, tuple) else spec


def _lower(spec: float | tuple[float, float]) -> float:
    return spec[0] if isinstance(spec, tuple) else spec


def _inner_steps(cfg: Mapping[str, Any], final_time, frames: int, length) -> int:
    """Solver steps per saved frame: an integer, or ``auto`` from an advective CFL bound."""
    spec = cfg.get("inner_steps", "auto")
    if spec != "auto":
        if int(spec) < 1:
            raise ValueError(f"pde.inner_steps must be >= 1 or 'auto', got {spec!r}")
        return int(spec)
    if "max_velocity" not in cfg or "cfl" not in cfg:
        raise ValueError("pde.inner_steps=auto needs pde.max_velocity and pde.cfl")
    from pdekit.solvers import max_stable_cfl

    cfl = float(cfg["cfl"])
    limit = max_stable_cfl(int(cfg.get("order", 4)), bool(cfg.get("dealias", True)))
    if not 0 < cfl <= limit:
        raise ValueError(f"pde.cfl={cfl} is outside (0, {limit:.3g}], the stable range of "
                         f"ETDRK{int(cfg.get('order', 4))}")
    dx = _lower(length) / int(cfg["solve_resolution"])
    dt_save = _upper(final_time) / (frames - 1)
    dt_max = cfl * dx / float(cfg["max_velocity"])
    return max(1, math.ceil(dt_save / dt_max - 1e-9))


def _frame_counts(cfg: Mapping[str, Any], final_time) -> tuple[int, int]:
    """``(frames, keep)`` from explicit counts, or from ``frame_interval`` and ``warmup`` times."""
    if cfg.get("frames") is not None:
        frames = int(cfg["frames"])
        keep = int(cfg["keep"]) if cfg.get("keep") is not None else frames
    else:
        if cfg.get("frame_interval") is None or isinstance(final_time, tuple):
            raise ValueError("the pde preset needs 'frames' (or a fixed final_time and "
                             "'frame_interval')")
        interval = float(cfg["frame_interval"])
        if interval <= 0:
            raise ValueError(f"pde.frame_interval must be positive, got {interval}")
        frames = round(final_time / interval) + 1
        keep = frames - round(float(cfg.get("warmup", 0.0)) / interval)
    if frames < 2:
        raise ValueError(f"pde frames must be >= 2, got {frames}")
    if not 1 <= keep <= frames:
        raise ValueError(f"keep={keep} frames is impossible with frames={frames} (need 1..frames)")
    return frames, keep


#: Every key a preset may hold (docs/data.md); anything else is refused, because a misspelt
#: or made-up key (``pde.nuu=0.1``, ``+pde.foo=1``) would otherwise be ignored silently.
PRESET_KEYS = frozenset({
    "name", "equation", "domain_length", "nu", "drag", "solve_resolution", "resolution",
    "inner_steps", "cfl", "max_velocity", "order", "dealias", "model_stride", "cond_keys",
    "initial_condition", "forcing", "splits", "final_time", "frames", "keep",
    "frame_interval", "warmup"})
SPLIT_KEYS = frozenset({"num_trajectories", "final_time", "frames", "keep", "frame_interval",
                        "warmup"})
NESTED_KEYS = {
    "initial_condition": frozenset({"type", "n_terms", "amplitude", "wavenumbers", "scale",
                                    "tau", "alpha", "peak_wavenumber", "max_speed"}),
    "forcing": frozenset({"type", "terms", "amplitude", "omega", "wavenumber", "wavenumbers"}),
}


def _unknown(given: Mapping[str, Any], known: frozenset, where: str) -> None:
    extra = sorted(str(k) for k in given if k not in known)
    if extra:
        raise ValueError(f"unknown key {where}.{extra[0]}; known: {', '.join(sorted(known))}")


def check_preset_keys(pde: Mapping[str, Any]) -> None:
    """Refuse keys no protocol reads (top level, ``splits.<split>``, nested sections)."""
    _unknown(pde, PRESET_KEYS, "pde")
    for name, known in NESTED_KEYS.items():
        if isinstance(pde.get(name), Mapping):
            _unknown(pde[name], known, f"pde.{name}")
    for split, sp in (pde.get("splits") or {}).items():
        if not isinstance(sp, Mapping):
            raise ValueError(f"pde.splits.{split} must be a mapping of {', '.join(sorted(SPLIT_KEYS))}")
        _unknown(sp, SPLIT_KEYS, f"pde.splits.{split}")


def build_protocol(
    pde: Mapping[str, Any], split: str, num_trajectories: int | None = None
) -> Protocol:
    """Resolve a preset mapping (``configs/pde/<name>.yaml``) for one split.

    Raises ``ValueError`` naming the offending key for impossible settings and for keys no
    protocol reads (:func:`check_preset_keys`).
    """
    cfg = dict(pde)
    check_preset_keys(cfg)
    for key in ("name", "equation", "solve_resolution", "resolution", "splits"):
        if key not in cfg:
            raise ValueError(f"the pde preset has no '{key}' entry; see configs/pde/ks.yaml")
    equation = str(cfg["equation"])
    if equation not in _EQUATIONS:
        raise ValueError(f"pde.equation={equation!r} is unknown; choose from {_EQUATIONS}")
    splits = cfg["splits"]
    if split not in splits:
        raise ValueError(
            f"split {split!r} is not defined by preset {cfg['name']!r}; "
            f"choose from {', '.join(splits)}"
        )
    sp = dict(splits[split])
    n = int(num_trajectories if num_trajectories is not None else sp["num_trajectories"])
    if n < 1:
        raise ValueError(f"num_trajectories must be >= 1, got {n}")
    final_time = check_range("final_time", sp.get("final_time", cfg.get("final_time")),
                             positive=True)
    frames, keep = _frame_counts({**cfg, **sp}, final_time)
    solve_n, store_n = int(cfg["solve_resolution"]), int(cfg["resolution"])
    if store_n < 4 or solve_n < 4:
        raise ValueError(f"pde.resolution={store_n} / solve_resolution={solve_n} must be >= 4")
    if store_n > solve_n:
        raise ValueError(
            f"pde.resolution={store_n} exceeds pde.solve_resolution={solve_n}; data are stored "
            "at the solve resolution or coarser"
        )
    length = check_range("domain_length", cfg.get("domain_length", 1.0), positive=True)
    spatial_dims = 2 if equation == "ns2d" else 1
    stride = int(cfg.get("model_stride", 1))
    if stride < 1:
        raise ValueError(f"pde.model_stride must be >= 1, got {stride}")
    return Protocol(
        name=str(cfg["name"]),
        equation=equation,
        split=split,
        num_trajectories=n,
        spatial_dims=spatial_dims,
        fields=("vorticity",) if equation == "ns2d" else ("u",),
        solve_resolution=solve_n,
        resolution=store_n,
        frames=frames,
        keep=keep,
        inner_steps=_inner_steps(cfg, final_time, frames, length),
        model_stride=stride,
        cond_keys=tuple(cfg.get("cond_keys", ("dt", "dx"))),
        final_time=final_time,
        options=cfg,
    )


def evolve(stepper, u0: Array, p: Protocol, dt_save: Array, store: Callable[[Array], Array]):
    """Burn in, then save ``p.keep`` frames (passed through ``store``) of ONE trajectory.

    The burn-in is one long ``trajectory`` call keeping only its last state. Kept frames are
    produced in chunks (a ``lax.scan`` over ``trajectory`` calls) so that at most
    :data:`CHUNK_BYTES` of fine-grid frames per trajectory exist at once; ``store`` (resampling
    to the stored grid, batched over leading axes) is applied per chunk.
    """
    from pdekit.solvers import trajectory

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
    from pdekit.data.protocols_eqs import sample_and_solve
    from pdekit.data.seeds import trajectory_key

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
