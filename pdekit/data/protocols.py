"""Data protocols: a preset config → a resolved :class:`Protocol` (every number checked).

A :class:`Protocol` is built from one ``configs/pde/<preset>.yaml`` mapping and a split name by
:func:`build_protocol`. Sampling and solving the trajectories of a protocol is
:mod:`pdekit.data.protocols_eqs` (which imports this module, never the reverse).

Frame bookkeeping (all presets): ``frames`` frames are saved uniformly on ``[0, T]`` (so the
saved interval is ``T / (frames - 1)``), ``inner_steps`` solver steps per saved frame, and the
first ``frames - keep`` frames (burn-in / warm-up) are never stored.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from pdekit.solvers import EQUATIONS, max_stable_cfl
from pdekit.solvers.catalogue import SPATIAL_DIMS

SPLITS = ("train", "valid", "test")


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
    stride: int
    cond_keys: tuple[str, ...]
    final_time: float | tuple[float, float]
    order: int  # ETDRK order
    dealias: bool  # 2/3 rule
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

    @property
    def forcing(self) -> Mapping[str, Any] | None:
        """The preset's ``forcing`` section (NS2D: the steady forcing; Burgers: how the
        per-trajectory coefficients are sampled), or None."""
        return self.options.get("forcing") or None

    def solver_attrs(self) -> dict[str, Any]:
        """The HDF5 root attributes that rebuild the solver (``docs/data.md``): ``equation``,
        ``order``, ``dealias`` and ``forcing`` (the preset's section as JSON, ``null`` if none)."""
        return {"equation": self.equation, "order": self.order, "dealias": self.dealias,
                "forcing": json.dumps(_plain(self.forcing), sort_keys=True)}

    def bytes_per_trajectory(self, solve_itemsize: int = 8, store_itemsize: int = 4) -> int:
        """Rough device-memory estimate of one trajectory in a batched solve."""
        state = self.solve_resolution**self.spatial_dims
        work = 48 * state * 2 * solve_itemsize  # ETDRK stages, FFT buffers (complex)
        out = math.prod(self.stored_shape) * (store_itemsize + solve_itemsize)
        return work + out


def _plain(value: Any) -> Any:
    """Mappings and sequences (also OmegaConf containers) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


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


def _inner_steps(cfg: Mapping[str, Any], final_time, frames: int, length, order: int,
                 dealias: bool) -> int:
    """Solver steps per saved frame: an integer, or ``auto`` from an advective CFL bound."""
    spec = cfg.get("inner_steps", "auto")
    if spec != "auto":
        if int(spec) < 1:
            raise ValueError(f"pde.inner_steps must be >= 1 or 'auto', got {spec!r}")
        return int(spec)
    if "max_velocity" not in cfg or "cfl" not in cfg:
        raise ValueError("pde.inner_steps=auto needs pde.max_velocity and pde.cfl")
    cfl = float(cfg["cfl"])
    limit = max_stable_cfl(order, dealias)
    if not 0 < cfl <= limit:
        raise ValueError(f"pde.cfl={cfl} is outside (0, {limit:.3g}], the stable range of "
                         f"ETDRK{order}" + ("" if dealias else " without dealiasing"))
    dx = _lower(length) / int(cfg["solve_resolution"])
    dt_save = _upper(final_time) / (frames - 1)
    dt_max = cfl * dx / float(cfg["max_velocity"])
    return max(1, math.ceil(dt_save / dt_max - 1e-9))


def _scheme(cfg: Mapping[str, Any]) -> tuple[int, bool]:
    """``(order, dealias)`` of the preset (defaults 4 and true), checked."""
    order, dealias = cfg.get("order", 4), cfg.get("dealias", True)
    if isinstance(order, bool) or order not in (1, 2, 3, 4):
        raise ValueError(f"pde.order must be 1, 2, 3 or 4 (the ETDRK order), got {order!r}")
    if not isinstance(dealias, bool):
        raise ValueError(f"pde.dealias must be true or false, got {dealias!r}")
    return int(order), dealias


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
    "inner_steps", "cfl", "max_velocity", "order", "dealias", "stride", "cond_keys",
    "initial_condition", "forcing", "splits", "final_time", "frames", "keep",
    "frame_interval", "warmup"})
SPLIT_KEYS = frozenset({"num_trajectories", "final_time", "frames", "keep", "frame_interval",
                        "warmup"})
NESTED_KEYS = {
    "initial_condition": frozenset({"type", "num_terms", "amplitude", "wavenumbers", "scale",
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
    if equation not in EQUATIONS:
        raise ValueError(f"pde.equation={equation!r} is unknown; choose from "
                         f"{', '.join(EQUATIONS)}")
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
    spatial_dims = SPATIAL_DIMS[equation]
    order, dealias = _scheme(cfg)
    stride = int(cfg.get("stride", 1))
    if stride < 1:
        raise ValueError(f"pde.stride must be >= 1, got {stride}")
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
        inner_steps=_inner_steps(cfg, final_time, frames, length, order, dealias),
        stride=stride,
        cond_keys=tuple(cfg.get("cond_keys", ("dt", "dx"))),
        final_time=final_time,
        order=order,
        dealias=dealias,
        options=cfg,
    )
