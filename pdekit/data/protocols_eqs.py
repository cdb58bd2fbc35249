"""Per-equation sampling and solving of ONE trajectory (vmapped by :mod:`.protocols`).

Each function takes a resolved :class:`~pdekit.data.protocols.Protocol` and a PRNG key and
returns ``(u, params)``: ``u`` is ``(keep, C, *spatial)`` at the stored resolution and
``params`` maps parameter names to per-trajectory scalars (or ``(J,)`` coefficient vectors).
Keys are always split into the same number of sub-keys, so changing one setting (e.g. fixing
``nu``) does not change the other sampled quantities.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array

from pdekit.data.protocols import Protocol, check_range, draw, evolve

_NUM_SUBKEYS = 8


def _store(p: Protocol):
    from pdekit.solvers import resample

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
    from pdekit.solvers import KuramotoSivashinsky, sine_sum

    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    ic = dict(p.options.get("initial_condition", {}))
    u0 = sine_sum(
        keys[3],
        N=p.solve_resolution,
        L=params["L"],
        n_terms=int(ic.get("n_terms", 10)),
        amplitude=float(ic.get("amplitude", 0.5)),
        wavenumbers=tuple(int(w) for w in ic.get("wavenumbers", (1, 2))),
    )
    stepper = KuramotoSivashinsky(
        L=params["L"], N=p.solve_resolution, dt=params["dt"] / p.inner_steps, nu=params["nu"],
        **_scheme(p),
    )
    return evolve(stepper, u0, p, params["dt"], _store(p)), params


def _scheme(p: Protocol) -> dict:
    return {"order": int(p.options.get("order", 4)), "dealias": bool(p.options.get("dealias", True))}


def _grf(p: Protocol, key, length, ic, dims):
    from pdekit.solvers import gaussian_random_field

    return gaussian_random_field(
        key, N=p.solve_resolution, L=length, dims=dims, scale=float(ic["scale"]),
        tau=float(ic["tau"]), alpha=float(ic["alpha"]),
    )


def _burgers(p: Protocol, key):
    from pdekit.solvers import Burgers, SineForcing

    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    ic = dict(p.options.get("initial_condition", {"type": "grf"}))
    forcing = None
    fcfg = p.options.get("forcing")
    if fcfg:
        fk = jax.random.split(keys[4], 4)
        terms = int(fcfg.get("terms", 5))
        amp, omega = float(fcfg.get("amplitude", 0.5)), float(fcfg.get("omega", 0.4))
        waves = jnp.asarray([float(w) for w in fcfg.get("wavenumbers", (1, 2, 3))])
        coeffs = {
            "forcing_amplitude": jax.random.uniform(fk[0], (terms,), minval=-amp, maxval=amp),
            "forcing_omega": jax.random.uniform(fk[1], (terms,), minval=-omega, maxval=omega),
            "forcing_wavenumber": jax.random.choice(fk[2], waves, (terms,)),
            "forcing_phase": jax.random.uniform(fk[3], (terms,), maxval=2.0 * math.pi),
        }
        params.update(coeffs)
        forcing = SineForcing(
            coeffs["forcing_amplitude"], coeffs["forcing_omega"], coeffs["forcing_wavenumber"],
            coeffs["forcing_phase"], params["L"],
        )
    kind = ic.get("type", "grf")
    if kind == "grf":
        u0 = _grf(p, keys[3], params["L"], ic, 1)
    elif kind == "forcing":
        if forcing is None:
            raise ValueError("pde.initial_condition.type=forcing needs a pde.forcing entry")
        x = jnp.arange(p.solve_resolution) * (params["L"] / p.solve_resolution)
        u0 = forcing(jnp.zeros_like(params["L"]), x)
    else:
        raise ValueError(f"pde.initial_condition.type={kind!r} is unknown; use grf or forcing")
    stepper = Burgers(
        L=params["L"], N=p.solve_resolution, dt=params["dt"] / p.inner_steps, nu=params["nu"],
        forcing=forcing, **_scheme(p),
    )
    return evolve(stepper, u0, p, params["dt"], _store(p)), params


def _ns2d(p: Protocol, key):
    from pdekit.solvers import (
        NavierStokes2D,
        fno_forcing,
        kolmogorov_forcing,
        random_vorticity,
    )

    keys = jax.random.split(key, _NUM_SUBKEYS)
    params = _common(p, keys)
    params["drag"] = draw(keys[5], check_range("drag", p.options.get("drag", 0.0)))
    n, length = p.solve_resolution, params["L"]
    fcfg = dict(p.options.get("forcing") or {"type": "none"})
    ftype = fcfg.get("type", "none")
    if ftype == "kolmogorov":
        forcing = kolmogorov_forcing(n, length, wavenumber=int(fcfg.get("wavenumber", 4)),
                                     amplitude=float(fcfg.get("amplitude", 1.0)))
    elif ftype == "fno":
        forcing = fno_forcing(n, length)
    elif ftype == "none":
        forcing = None
    else:
        raise ValueError(f"pde.forcing.type={ftype!r} is unknown; use kolmogorov, fno or none")
    ic = dict(p.options.get("initial_condition", {"type": "random_vorticity"}))
    kind = ic.get("type", "random_vorticity")
    if kind == "random_vorticity":
        w0 = random_vorticity(keys[3], N=n, L=length,
                              peak_wavenumber=float(ic.get("peak_wavenumber", 4.0)),
                              max_speed=float(ic.get("max_speed", 7.0)))
    elif kind == "grf":
        w0 = _grf(p, keys[3], length, ic, 2)
    else:
        raise ValueError(f"pde.initial_condition.type={kind!r} is unknown; "
                         "use random_vorticity or grf")
    stepper = NavierStokes2D(
        L=length, N=n, dt=params["dt"] / p.inner_steps, nu=params["nu"], drag=params["drag"],
        forcing=forcing, max_velocity=p.options.get("max_velocity"), **_scheme(p),
    )
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
