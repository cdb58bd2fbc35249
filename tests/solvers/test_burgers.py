"""Burgers: Cole–Hopf exact solution, temporal order, conservation, forcing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import Burgers, SineForcing, grid_points, trajectory

pytestmark = pytest.mark.usefixtures("x64")


def cole_hopf(x, t, nu, a=2.0, b=1.0):
    """phi = a + b exp(-nu t) cos x solves the heat equation; u = -2 nu phi_x / phi."""
    e = b * np.exp(-nu * t)
    return 2 * nu * e * np.sin(x) / (a + e * np.cos(x))


def test_cole_hopf_exact_solution():
    N, L, nu, dt, T = 64, 2 * np.pi, 0.1, 1e-3, 1.0
    x = np.asarray(grid_points(N, L))
    stepper = Burgers(L=L, resolution=N, dt=dt, nu=nu)
    frames = jax.jit(lambda u: trajectory(stepper, u, 5, 250))(jnp.asarray(cole_hopf(x, 0.0, nu)))
    for i, t in enumerate(np.linspace(0, T, 5)):
        exact = cole_hopf(x, t, nu)
        err = np.max(np.abs(np.asarray(frames[i]) - exact)) / np.max(np.abs(exact))
        assert err <= 1e-8, (t, err)


def _burgers_error(dt, order=4):
    N, L, nu, T = 128, 2 * np.pi, 0.1, 1.0
    x = np.asarray(grid_points(N, L))
    s = Burgers(L=L, resolution=N, dt=dt, nu=nu, order=order)
    n = int(round(T / dt))
    u = trajectory(s, jnp.asarray(cole_hopf(x, 0.0, nu, a=1.5)), 2, n)[-1]
    exact = cole_hopf(x, T, nu, a=1.5)
    return float(np.linalg.norm(np.asarray(u) - exact) / np.linalg.norm(exact))


def test_etdrk4_temporal_order_burgers():
    # against the exact Cole–Hopf solution (a=1.5, nu=0.1, N=128 so the spatial error is ~1e-17)
    dts = [0.2, 0.1, 0.05, 0.025]
    errs = np.array([_burgers_error(dt) for dt in dts])
    orders = np.log2(errs[:-1] / errs[1:])
    assert orders[-1] >= 3.5, orders
    assert np.all(orders >= 3.0), orders


@pytest.mark.parametrize("order,expected", [(1, 1), (2, 2), (3, 3)])
def test_lower_order_schemes_converge_at_their_order(order, expected):
    errs = np.array([_burgers_error(dt, order) for dt in (0.04, 0.02, 0.01)])
    orders = np.log2(errs[:-1] / errs[1:])
    assert abs(orders[-1] - expected) < 0.3, orders


def test_forced_burgers_conserves_mean_and_forcing_matches_formula():
    L, N = 16.0, 128
    key = jax.random.PRNGKey(3)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    f = SineForcing(
        amplitude=jax.random.uniform(k1, (5,), minval=-0.5, maxval=0.5),
        omega=jax.random.uniform(k2, (5,), minval=-0.4, maxval=0.4),
        wavenumber=jax.random.randint(k3, (5,), 1, 4).astype(float),
        phase=jax.random.uniform(k4, (5,), maxval=2 * np.pi),
        L=L,
    )
    x = grid_points(N, L)
    t = 0.7
    expected = sum(
        f.amplitude[j] * np.sin(f.omega[j] * t + 2 * np.pi * f.wavenumber[j] * x / L + f.phase[j])
        for j in range(5)
    )
    np.testing.assert_allclose(f(t, x), expected, atol=1e-13)
    s = Burgers(L=L, resolution=N, dt=0.01, nu=0.1, forcing=f)
    u0 = f(0.0, x) + 0.3  # nonzero mean
    traj = trajectory(s, u0, 11, 40)
    assert np.all(np.isfinite(traj))
    np.testing.assert_allclose(traj.mean(axis=1), 0.3, atol=1e-13)
    # forcing does something: the unforced solution differs
    unforced = trajectory(Burgers(L=L, resolution=N, dt=0.01, nu=0.1), u0, 11, 40)
    assert float(jnp.abs(unforced[-1] - traj[-1]).max()) > 1e-2


def test_heat_limit_matches_exact_decay():
    # zero amplitude nonlinearity is quadratic: a tiny-amplitude mode decays as exp(-nu k^2 t)
    L, N, nu = 1.0, 32, 0.05
    x = grid_points(N, L)
    u0 = 1e-9 * jnp.sin(2 * np.pi * 3 * x)
    u = trajectory(Burgers(L=L, resolution=N, dt=0.01, nu=nu), u0, 2, 100)[-1]
    np.testing.assert_allclose(u, u0 * np.exp(-nu * (6 * np.pi) ** 2 * 1.0), rtol=1e-7, atol=1e-20)
