"""The equation catalogue: an equation name and its parameters -> the solver object.

Data generation (:mod:`pdekit.data.protocols_eqs`) and the numerical baseline
(:mod:`pdekit.evaluation.baseline`) both build their steppers here, so the baseline re-solves
exactly the equation the data were generated with::

    stepper = stepper_for("ks", {"L": 64.0, "nu": 1.0}, resolution=256, dt=0.05)
    stepper = stepper_for("ns2d", {"L": 2 * np.pi, "nu": 1e-3, "drag": 0.1}, resolution=64, dt=1e-3,
                          forcing={"type": "kolmogorov", "wavenumber": 4, "amplitude": 1.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxtyping import Array, Float

from pdekit.solvers.burgers import Burgers, SineForcing
from pdekit.solvers.ks import KuramotoSivashinsky
from pdekit.solvers.navier_stokes import NavierStokes2D, fno_forcing, kolmogorov_forcing
from pdekit.solvers.stepper import SpectralStepper
from pdekit.solvers.transforms import SpectralTransform

#: Equation names, as in a preset's ``equation`` entry and the HDF5 ``equation`` attribute.
EQUATIONS = ("ks", "burgers", "ns2d")
#: Spatial dimensions of each equation.
SPATIAL_DIMS = {"ks": 1, "burgers": 1, "ns2d": 2}
#: Per-trajectory coefficients of the forced Burgers sine forcing (see :class:`SineForcing`).
FORCING_COEFFICIENTS = ("forcing_amplitude", "forcing_omega", "forcing_wavenumber",
                        "forcing_phase")
#: Steady NS2D vorticity forcings, by the ``type`` of a preset's ``forcing`` section.
NS2D_FORCINGS = ("kolmogorov", "fno", "none")


def check_equation(equation: str) -> str:
    """Return ``equation`` if it is in :data:`EQUATIONS`, else raise a one-line error."""
    if equation not in EQUATIONS:
        raise ValueError(f"unknown equation {equation!r}; choose from {', '.join(EQUATIONS)}")
    return equation


def ns2d_forcing(forcing: Mapping[str, Any] | None, resolution: int, L) -> Float[Array, "N N"] | None:
    """The steady vorticity forcing named by a preset's ``forcing`` section, on an ``N``² grid.

    ``{"type": "kolmogorov", "wavenumber": 4, "amplitude": 1.0}`` is the curl of
    ``amplitude sin(wavenumber y) x-hat`` (:func:`kolmogorov_forcing`); ``{"type": "fno"}`` is
    the FNO torus forcing (:func:`fno_forcing`); ``None`` or ``{"type": "none"}`` is unforced.
    """
    kind = "none" if forcing is None else str(forcing.get("type", "none"))
    if kind == "kolmogorov":
        return kolmogorov_forcing(resolution, L, wavenumber=int(forcing.get("wavenumber", 4)),
                                  amplitude=float(forcing.get("amplitude", 1.0)))
    if kind == "fno":
        return fno_forcing(resolution, L)
    if kind == "none":
        return None
    raise ValueError(f"NS2D forcing type {kind!r} is unknown; choose from {', '.join(NS2D_FORCINGS)}")


def _require(params: Mapping[str, Any], name: str, equation: str):
    if name not in params:
        raise ValueError(f"the {equation} stepper needs the parameter {name!r}; got "
                         f"{', '.join(sorted(params)) or 'none'}")
    return params[name]


def _sine_forcing(params: Mapping[str, Any]) -> SineForcing | None:
    given = [name for name in FORCING_COEFFICIENTS if name in params]
    if not given:
        return None
    if len(given) != len(FORCING_COEFFICIENTS):
        missing = sorted(set(FORCING_COEFFICIENTS) - set(given))
        raise ValueError(f"the burgers forcing needs all of {', '.join(FORCING_COEFFICIENTS)}; "
                         f"missing {', '.join(missing)}")
    return SineForcing(*(params[name] for name in FORCING_COEFFICIENTS), params["L"])


def stepper_for(equation: str, params: Mapping[str, Any], *, resolution: int, dt, order: int = 4,
                dealias: bool = True, forcing: Mapping[str, Any] | None = None,
                max_velocity=None, transform: str | SpectralTransform = "fft") -> SpectralStepper:
    r"""The solver of ``equation`` with the parameters of one trajectory.

    Args:
        equation: ``"ks"`` (:class:`KuramotoSivashinsky`), ``"burgers"`` (:class:`Burgers`)
            or ``"ns2d"`` (:class:`NavierStokes2D`).
        params: the PDE's parameters, scalars or 0-d arrays (tracers under ``vmap``); other
            entries (``dt``, ``dx``, ``final_time``, ...) are ignored.

            * ``L`` (all): domain length.
            * ``nu``: KS hyper-viscosity (default 1), Burgers viscosity (β of the forced
              preset), NS2D viscosity.
            * ``drag`` (ns2d, default 0): linear drag α.
            * ``forcing_amplitude``, ``forcing_omega``, ``forcing_wavenumber``,
              ``forcing_phase`` (burgers, all four or none): the ``(J,)`` coefficients of the
              time-dependent sine forcing of one trajectory.
        resolution: grid points per axis (static).
        dt: internal time step.
        order: ETDRK order 1–4 (static).
        dealias: 2/3-rule dealiasing (static).
        forcing: ns2d only: the steady vorticity forcing, as a preset's ``forcing`` section
            (:func:`ns2d_forcing`).
        max_velocity: ns2d only: a speed bound for the CFL check (see :class:`NavierStokes2D`).
        transform: the spectral transform, ``"fft"`` (default) or ``"matmul"`` (static; see
            :class:`~pdekit.solvers.transforms.SpectralTransform`).

    Raises ``ValueError`` for an unknown equation, a missing parameter, or a ``forcing`` /
    ``max_velocity`` given to a 1D equation.
    """
    check_equation(equation)
    if equation != "ns2d" and (forcing is not None or max_velocity is not None):
        raise ValueError(f"forcing= and max_velocity= are for ns2d; the {equation} parameters "
                         "(and the burgers forcing_* coefficients) go in params")
    length = _require(params, "L", equation)
    scheme = {"resolution": resolution, "dt": dt, "order": order, "dealias": dealias,
              "transform": transform}
    if equation == "ks":
        return KuramotoSivashinsky(L=length, nu=params.get("nu", 1.0), **scheme)
    if equation == "burgers":
        return Burgers(L=length, nu=_require(params, "nu", equation),
                       forcing=_sine_forcing(params), **scheme)
    return NavierStokes2D(L=length, nu=_require(params, "nu", equation),
                          drag=params.get("drag", 0.0), forcing=ns2d_forcing(forcing, resolution, length),
                          max_velocity=max_velocity, **scheme)
