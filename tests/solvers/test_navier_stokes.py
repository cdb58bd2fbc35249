"""NS2D: Taylor–Green vortex, mean vorticity, forcing, CFL guard, diffrax cross-check."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import (
    NavierStokes2D,
    fno_forcing,
    grid_points,
    kolmogorov_forcing,
    random_vorticity,
    trajectory,
    trajectory_diffrax,
)

pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("drag", [0.0, 0.1])
def test_taylor_green_vortex(drag):
    N, L, nu, k = 32, 2 * np.pi, 0.05, 2.0
    x = grid_points(N, L)
    X, Y = jnp.meshgrid(x, x, indexing="ij")
    w0 = 2 * k * jnp.cos(k * X) * jnp.cos(k * Y)
    s = NavierStokes2D(L=L, resolution=N, dt=0.01, nu=nu, drag=drag)
    frames = trajectory(s, w0, 6, 20)
    for i in range(6):
        t = i * 0.2
        exact = w0 * np.exp(-(2 * nu * k**2 + drag) * t)
        err = float(jnp.abs(frames[i] - exact).max() / jnp.abs(exact).max())
        assert err <= 1e-10, (t, err)
        assert abs(float(frames[i].mean())) <= 1e-13


def test_velocity_from_vorticity():
    N, L = 16, 2 * np.pi
    x = grid_points(N, L)
    X, Y = jnp.meshgrid(x, x, indexing="ij")
    s = NavierStokes2D(L=L, resolution=N, dt=0.01, nu=0.01)
    # psi = sin x sin 2y -> omega = -lap psi = 5 psi ; u = psi_y, v = -psi_x
    psi = jnp.sin(X) * jnp.sin(2 * Y)
    u, v = s.velocity(5 * psi)
    np.testing.assert_allclose(u, 2 * jnp.sin(X) * jnp.cos(2 * Y), atol=1e-12)
    np.testing.assert_allclose(v, -jnp.cos(X) * jnp.sin(2 * Y), atol=1e-12)


def test_kolmogorov_forcing_is_curl_of_body_force_and_steady_state():
    N, L, nu, drag = 32, 2 * np.pi, 0.1, 0.1
    f = kolmogorov_forcing(N, L, wavenumber=4)
    y = grid_points(N, L)
    np.testing.assert_allclose(f[3], -4 * np.cos(4 * y), atol=1e-12)
    # the laminar steady state of omega_t = nu lap omega - drag omega + f is f / (16 nu + drag)
    # (advection vanishes for a shear flow)
    s = NavierStokes2D(L=L, resolution=N, dt=0.05, nu=nu, drag=drag, forcing=f)
    w = trajectory(s, jnp.zeros((N, N)), 2, 400)[-1]
    np.testing.assert_allclose(w, f / (16 * nu + drag), atol=1e-8)


def test_fno_forcing_formula():
    x = grid_points(8, 1.0)
    f = fno_forcing(8, 1.0)
    np.testing.assert_allclose(f[2, 5], 0.1 * (np.sin(2 * np.pi * (x[2] + x[5])) + np.cos(2 * np.pi * (x[2] + x[5]))))


def test_ns_matches_adaptive_diffrax_on_turbulent_state():
    N, L = 32, 2 * np.pi
    w0 = random_vorticity(jax.random.PRNGKey(0), resolution=N, L=L, peak_wavenumber=3.0, max_speed=1.0)
    s = NavierStokes2D(L=L, resolution=N, dt=0.005, nu=0.01, drag=0.05, forcing=kolmogorov_forcing(N, L),
                       max_velocity=2.0)
    a = trajectory(s, w0, 3, 100)
    b = trajectory_diffrax(s, w0, 3, 0.5, rtol=1e-10, atol=1e-10, solver=diffrax.Tsit5())
    err = float(jnp.linalg.norm(a[-1] - b[-1]) / jnp.linalg.norm(b[-1]))
    assert err < 1e-8, err
