"""Numerical baseline: the data's own solver, re-run at a chosen resolution.

The baseline starts from the same state as the model rollout (the last input frame,
spectrally resampled from the data grid to ``N``), steps with the model's step ``dt`` split
into ``inner_steps`` solver sub-steps, and its frames are resampled back to the data grid so
that every metric compares like with like.

The solver is the equation catalogue's (:func:`pdekit.solvers.stepper_for`) for the equation,
ETDRK order, dealiasing and forcing the data were generated with: :func:`read_solver_spec`
reads them from the file's root attributes (``equation``, ``order``, ``dealias``,
``forcing``; ``docs/data.md``). Older files without these attributes fall back to the
``config`` attribute (``pde.equation``, ``pde.order``, ...), then to the ``pde`` attribute
when it is an equation name (``pdearena``, the PDEArena/LPSDA KS files, means ``ks``), with
the generator's defaults ETDRK4 and the 2/3 rule. Per-trajectory parameters (``L``, ``nu``,
``drag``, the Burgers ``forcing_*`` coefficients) come from ``params/*``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml
from jaxtyping import Array, Float

from pdekit.data import list_splits, open_trajectories
from pdekit.evaluation.rollout import shard_batch
from pdekit.solvers import EQUATIONS, resample, stepper_for
from pdekit.solvers.catalogue import FORCING_COEFFICIENTS, SPATIAL_DIMS, check_equation
from pdekit.solvers.stepper import SpectralStepper

_CHOOSE = f"pass baseline.pde={'|'.join(EQUATIONS)}"


@dataclasses.dataclass(frozen=True)
class SolverSpec:
    """What the baseline solves: an equation of the catalogue and its integrator.

    ``forcing`` is the preset's ``forcing`` section as JSON text (``"null"`` if none), as in
    the HDF5 attribute; only NS2D's steady forcing is rebuilt from it (Burgers' forcing is per
    trajectory, in ``params``).
    """

    equation: str
    order: int = 4
    dealias: bool = True
    forcing: str = "null"

    def __post_init__(self):
        check_equation(self.equation)
        if isinstance(self.order, bool) or self.order not in (1, 2, 3, 4):
            raise ValueError(f"the ETDRK order must be 1, 2, 3 or 4, got {self.order!r}")

    @property
    def spatial_dims(self) -> int:
        return SPATIAL_DIMS[self.equation]

    def stepper(self, params: Mapping[str, Any], resolution: int, dt) -> SpectralStepper:
        """The catalogue's stepper for one trajectory's ``params`` at ``resolution`` points."""
        forcing = json.loads(self.forcing) if self.equation == "ns2d" else None
        return stepper_for(self.equation, params, resolution=resolution, dt=dt, order=self.order,
                           dealias=self.dealias, forcing=forcing)


def baseline_kind(pde: str | None) -> str | None:
    """The equation a bare PDE name stands for (files that record no equation): an equation
    name itself, ``pdearena`` (PDEArena/LPSDA KS files) for ``ks``; None otherwise. Preset
    names are not guessed from."""
    name = str(pde).lower()
    if name in EQUATIONS:
        return name
    return "ks" if name == "pdearena" else None


def _config_pde(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``pde`` section of the ``config`` attribute (``{}`` when absent or unreadable)."""
    try:
        config = yaml.safe_load(str(attrs.get("config", "") or "")) or {}
    except yaml.YAMLError:
        return {}
    pde = config.get("pde") if isinstance(config, Mapping) else None
    return pde if isinstance(pde, Mapping) else {}


def solver_spec(attrs: Mapping[str, Any], *, equation: str | None = None,
                where: str = "the data") -> SolverSpec:
    """The :class:`SolverSpec` recorded in a file's root ``attrs``; ``equation`` overrides the
    file's. Each setting is read from the attribute, else from the ``config`` attribute's
    ``pde`` section, else the default (ETDRK4, dealiased, unforced); the equation last from
    the ``pde`` attribute (:func:`baseline_kind`). One-line ``ValueError`` when the equation
    cannot be determined."""
    config = _config_pde(attrs)

    def setting(name: str, default):
        return attrs[name] if name in attrs else config.get(name, default)

    found = equation or setting("equation", None) or baseline_kind(attrs.get("pde"))
    if found is None:
        raise ValueError(f"{where}: cannot tell which equation the data solve (no 'equation' "
                         f"attribute or config, pde={attrs.get('pde')!r}); {_CHOOSE}")
    forcing = setting("forcing", None)
    if not isinstance(forcing, str):  # the config's section itself
        forcing = json.dumps(None if forcing is None else dict(forcing), sort_keys=True)
    try:
        return SolverSpec(equation=str(found), order=int(setting("order", 4)),
                          dealias=bool(setting("dealias", True)), forcing=forcing)
    except ValueError as err:
        hint = f"; {_CHOOSE}" if "equation" in str(err) else ""
        raise ValueError(f"{where}: {err}{hint}") from None


def read_solver_spec(path, equation: str | None = None) -> SolverSpec:
    """:func:`solver_spec` of a pdekit or PDEArena file (root attributes only)."""
    splits = list_splits(path)  # a PDEArena file holds several splits with shared attributes
    with open_trajectories(path, split=splits[0] if splits else None) as tr:
        return solver_spec({**tr.attrs, "pde": tr.pde}, equation=equation, where=str(path))


def _param(params: Mapping, name: str, n: int, default=None) -> np.ndarray:
    if name in params:
        return np.asarray(params[name], dtype=np.float64)
    if default is None:
        raise ValueError(f"the baseline needs the per-trajectory parameter {name!r}; the data "
                         f"has {', '.join(sorted(params)) or 'none'}")
    return np.full(n, float(default))


def _solver_params(spec: SolverSpec, params: Mapping, n: int) -> dict[str, np.ndarray]:
    p = {"L": _param(params, "L", n),
         "nu": _param(params, "nu", n, default=1.0 if spec.equation == "ks" else None)}
    if spec.equation == "ns2d":
        p["drag"] = _param(params, "drag", n, default=0.0)
    if spec.equation == "burgers" and any(k in params for k in FORCING_COEFFICIENTS):
        p.update({k: _param(params, k, n) for k in FORCING_COEFFICIENTS})
    for name, value in p.items():
        if value.ndim < 1 or value.shape[0] != n:
            raise ValueError(f"params[{name!r}] must have one row per state ({n}), got shape "
                             f"{value.shape}")
    return p


@functools.lru_cache(maxsize=16)
def baseline_fn(spec: SolverSpec, resolution: int, n_data: int, rollout_steps: int,
                inner_steps: int):
    """Jitted ``(u0 (B, C, *S), params, dt (B,), t0 (B,)) -> (B, rollout_steps, C, *S)``.

    The state stays in Fourier space at ``resolution`` points; each model step's state is resampled to
    the ``n_data`` grid as it is produced, so only data-grid frames are kept.
    """
    dims = spec.spatial_dims

    def one(u0, p, dt, t0):
        stepper = spec.stepper(p, resolution, dt / inner_steps)
        u_hat = stepper.to_fourier(resample(u0[0], resolution, dims).astype(stepper.dt.dtype))

        def sub_step(carry, _):
            u_hat, t = carry
            return (stepper.step_hat(u_hat, t), t + stepper.dt), None

        def model_step(carry, _):
            carry = jax.lax.scan(sub_step, carry, None, length=inner_steps)[0]
            return carry, resample(stepper.from_fourier(carry[0]), n_data, dims)

        frames = jax.lax.scan(model_step, (u_hat, t0.astype(stepper.dt.dtype)), None,
                              length=rollout_steps)[1]
        return frames[:, None].astype(u0.dtype)

    return jax.jit(jax.vmap(one))


def run_baseline(
    spec: SolverSpec | str,
    u0: Float[Array, "B C *spatial"],
    params: Mapping[str, np.ndarray],
    dt: Float[Array, " B"],
    rollout_steps: int,
    *,
    resolution: int,
    inner_steps: int = 1,
    t0: Float[Array, " B"] | None = None,
) -> tuple[np.ndarray, dict]:
    """Solve ``rollout_steps`` model steps from the physical states ``u0`` at ``resolution`` points.

    ``spec`` is the data's :class:`SolverSpec` (:func:`read_solver_spec`), or an equation name
    (ETDRK4, dealiased). ``dt`` is the model step and ``t0`` the time of ``u0`` (the clock of
    a time-dependent forcing). The solve runs in float64 inside ``jax.enable_x64(True)``, else
    float32; frames come back in ``u0``'s dtype.

    Returns the predicted frames ``(B, rollout_steps, C, *S)`` on the data grid and timings:
    ``{"wall_s": steady-state seconds of one solve (after compilation), "compile_s": first call
    minus wall_s, "resolution", "inner_steps", "solver_dt_mean", "equation", "order",
    "dealias"}``.
    """
    if not isinstance(spec, SolverSpec):
        if baseline_kind(spec) is None:
            raise ValueError(f"no numerical baseline for pde {spec!r}: name an equation "
                             f"({', '.join(EQUATIONS)}) or pass read_solver_spec(<data file>)")
        spec = SolverSpec(baseline_kind(spec))
    u0 = np.asarray(u0)
    if not np.issubdtype(u0.dtype, np.floating):
        u0 = u0.astype(np.float32)
    dims = spec.spatial_dims
    if (u0.ndim != 2 + dims or u0.shape[1] != 1
            or any(s != u0.shape[-1] for s in u0.shape[2:])):
        raise ValueError(f"the {spec.equation} baseline needs 1-channel {dims}D states on a "
                         f"square grid, (B, 1{', N' * dims}); got {u0.shape}")
    if int(inner_steps) < 1 or int(resolution) < 8 or int(rollout_steps) < 1:
        raise ValueError(f"baseline inner_steps and rollout_steps must be >= 1 and resolution >= 8, "
                         f"got {inner_steps}, {rollout_steps} and {resolution}")
    b = u0.shape[0]
    dtype = jnp.asarray(0.0).dtype  # float64 inside jax.enable_x64(True), else float32
    p = {k: jnp.asarray(v, dtype) for k, v in _solver_params(spec, params, b).items()}
    dt = jnp.asarray(np.broadcast_to(np.asarray(dt, np.float64), (b,)), dtype)
    t0 = jnp.zeros(b, dtype) if t0 is None else jnp.asarray(t0, dtype)
    fn = baseline_fn(spec, int(resolution), u0.shape[-1], int(rollout_steps), int(inner_steps))
    args = shard_batch(jnp.asarray(u0), p, dt, t0) if b > 1 else (jnp.asarray(u0), p, dt, t0)
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    wall = time.perf_counter() - start
    info = {"resolution": int(resolution), "inner_steps": int(inner_steps), "wall_s": wall,
            "compile_s": max(first - wall, 0.0),
            "solver_dt_mean": float(jnp.mean(dt)) / int(inner_steps),
            "equation": spec.equation, "order": spec.order, "dealias": spec.dealias}
    return np.asarray(out), info
