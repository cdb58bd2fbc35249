"""The equation catalogue builds the same solver as the classes, and refuses bad input."""

import equinox as eqx
import numpy as np
import pytest

from pdekit.solvers import (
    Burgers,
    KuramotoSivashinsky,
    NavierStokes2D,
    SineForcing,
    fno_forcing,
    kolmogorov_forcing,
    stepper_for,
)

FORCING = {"forcing_amplitude": np.array([0.5, -0.3]), "forcing_omega": np.array([0.4, -0.2]),
           "forcing_wavenumber": np.array([1.0, 2.0]), "forcing_phase": np.array([0.3, 1.0])}


def _cases():
    L = 2 * np.pi
    return [
        (stepper_for("ks", {"L": 22.0, "dt": 9.0}, resolution=32, dt=0.1, order=2),
         KuramotoSivashinsky(L=22.0, resolution=32, dt=0.1, nu=1.0, order=2)),
        (stepper_for("burgers", {"L": 16.0, "nu": 0.1, **FORCING}, resolution=32, dt=0.05, dealias=False),
         Burgers(L=16.0, resolution=32, dt=0.05, nu=0.1, dealias=False,
                 forcing=SineForcing(*FORCING.values(), 16.0))),
        (stepper_for("ns2d", {"L": L, "nu": 1e-2, "drag": 0.1}, resolution=16, dt=0.01,
                     forcing={"type": "kolmogorov", "wavenumber": 2, "amplitude": 0.5}),
         NavierStokes2D(L=L, resolution=16, dt=0.01, nu=1e-2, drag=0.1,
                        forcing=kolmogorov_forcing(16, L, wavenumber=2, amplitude=0.5))),
        (stepper_for("ns2d", {"L": 1.0, "nu": 1e-3}, resolution=16, dt=0.01, order=3,
                     forcing={"type": "fno"}),
         NavierStokes2D(L=1.0, resolution=16, dt=0.01, nu=1e-3, order=3, forcing=fno_forcing(16, 1.0))),
    ]


def test_stepper_for_equals_the_class(x64):
    """Same class, static fields (N, order, dealias) and every array leaf (parameters, ETDRK
    coefficients, forcing), so the same step. Built in one compiled call (eager construction
    of eight steppers takes seconds)."""
    cases = eqx.filter_jit(_cases)()
    for built, direct in cases:
        assert type(built) is type(direct)
        assert (built.resolution, built.order, built.dealias) == (direct.resolution, direct.order, direct.dealias)
        assert bool(eqx.tree_equal(built, direct))
    ks, burgers, kolmogorov, fno = (built for built, _ in cases)
    assert float(ks.nu) == 1.0 and burgers.forcing is not None and kolmogorov.forcing_hat is not None
    assert not bool(eqx.tree_equal(kolmogorov, fno))  # the comparison can fail


@pytest.mark.parametrize("equation, params, kwargs, match", [
    ("kdv", {"L": 1.0}, {}, "unknown equation 'kdv'; choose from ks, burgers, ns2d"),
    ("burgers", {"L": 1.0}, {}, "burgers stepper needs the parameter 'nu'"),
    ("ks", {"nu": 1.0}, {}, "ks stepper needs the parameter 'L'"),
    ("burgers", {"L": 1.0, "nu": 0.1, "forcing_amplitude": np.ones(2)}, {},
     "missing forcing_omega, forcing_phase, forcing_wavenumber"),
    ("ks", {"L": 1.0}, {"forcing": {"type": "fno"}}, "forcing= and max_velocity= are for ns2d"),
    ("ns2d", {"L": 1.0, "nu": 0.1}, {"forcing": {"type": "shear"}},
     "NS2D forcing type 'shear' is unknown"),
])
def test_stepper_for_refuses_bad_input(equation, params, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stepper_for(equation, params, resolution=16, dt=0.01, **kwargs)
