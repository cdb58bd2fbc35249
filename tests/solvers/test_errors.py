"""Bad input is refused before any work is done, with a message naming the problem."""

import numpy as np
import pytest

from pdekit.solvers import (
    Burgers,
    KuramotoSivashinsky,
    NavierStokes2D,
    kolmogorov_forcing,
    max_stable_cfl,
    resample,
    trajectory,
)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(dt=0.0), "dt must be > 0"),
        (dict(dt=-0.1), "dt must be > 0"),
        (dict(resolution=3, dealias=False), "resolution=3 is too small"),
        (dict(nu=-1.0), "nu must be >= 0"),
        (dict(resolution=5), "too coarse for 2/3-rule dealiasing"),
        (dict(L=0.0), "L must be > 0"),
        (dict(order=5), "order must be 1, 2, 3 or 4"),
        (dict(dt=float("nan")), "dt must be finite"),
    ],
)
def test_ks_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KuramotoSivashinsky(**kwargs)


def test_burgers_rejects_negative_viscosity():
    with pytest.raises(ValueError, match="nu must be >= 0"):
        Burgers(nu=-0.01)


def test_ns_rejects_unstable_cfl_and_names_a_stable_dt():
    N, L = 64, 2 * np.pi
    limit = max_stable_cfl(4, True)
    dx = L / N
    ok_dt = 0.9 * limit * dx / 7.0
    NavierStokes2D(resolution=N, L=L, dt=ok_dt, nu=1e-3, max_velocity=7.0)
    with pytest.raises(ValueError, match=r"unstable time step: advective CFL .* exceeds"):
        NavierStokes2D(resolution=N, L=L, dt=1.2 * limit * dx / 7.0, nu=1e-3, max_velocity=7.0)


def test_cfl_limit_is_a_real_stability_boundary():
    """Inviscid flow: just below the CFL limit stays bounded, 4x above it blows up."""
    import jax
    import jax.numpy as jnp

    from pdekit.solvers import random_vorticity

    N, L = 32, 2 * np.pi
    w0 = random_vorticity(jax.random.PRNGKey(0), resolution=N, L=L, peak_wavenumber=4.0, max_speed=1.0)
    dx = L / N
    limit = max_stable_cfl(4, True)
    stable = trajectory(NavierStokes2D(resolution=N, L=L, dt=0.5 * limit * dx, nu=0.0), w0, 2, 200)[-1]
    unstable = trajectory(NavierStokes2D(resolution=N, L=L, dt=4.0 * limit * dx, nu=0.0), w0, 2, 200)[-1]
    assert bool(jnp.all(jnp.isfinite(stable))) and float(jnp.abs(stable).max()) < 10 * float(jnp.abs(w0).max())
    assert not (bool(jnp.all(jnp.isfinite(unstable))) and float(jnp.abs(unstable).max()) < 10 * float(jnp.abs(w0).max()))


def test_ns_forcing_shape_mismatch():
    with pytest.raises(ValueError, match=r"forcing must have shape \(32, 32\)"):
        NavierStokes2D(resolution=32, forcing=kolmogorov_forcing(16))


def test_trajectory_rejects_bad_counts():
    s = KuramotoSivashinsky(resolution=16, L=10.0, dt=0.1)
    with pytest.raises(ValueError, match="num_frames must be a positive integer"):
        trajectory(s, np.zeros(16), 0)
    with pytest.raises(ValueError, match="inner_steps must be a positive integer"):
        trajectory(s, np.zeros(16), 3, inner_steps=0)


def test_resample_rejects_non_square():
    with pytest.raises(ValueError, match="square grid"):
        resample(np.zeros((8, 6)), 4, spatial_dims=2)
