import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import grid
from pdekit.solvers.etdrk import phi_functions


def test_grid_excludes_right_endpoint():
    x = np.asarray(grid.grid_points(8, 2.0))
    np.testing.assert_allclose(x, np.arange(8) * 0.25)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("N,L", [(16, 2 * np.pi), (33, 5.0), (64, 64.0)])
def test_spectral_derivatives_are_exact_for_trig(N, L):
    x = grid.grid_points(N, L)
    k = 2 * np.pi * 3 / L
    u = jnp.sin(k * x)
    u_hat = grid.fft(u, 1)
    du = grid.ifft(grid.derivative_operator(N, L, 1, 0, 1) * u_hat, N, 1)
    d4u = grid.ifft(grid.derivative_operator(N, L, 1, 0, 4) * u_hat, N, 1)
    np.testing.assert_allclose(du, k * np.cos(k * x), atol=1e-12 * k)
    np.testing.assert_allclose(d4u, k**4 * np.sin(k * x), atol=1e-11 * k**4)


@pytest.mark.usefixtures("x64")
def test_2d_derivatives_and_laplacian():
    N, L = 16, 2 * np.pi
    x = grid.grid_points(N, L)
    X, Y = jnp.meshgrid(x, x, indexing="ij")
    u = jnp.sin(2 * X) * jnp.cos(3 * Y)
    u_hat = grid.fft(u, 2)
    uy = grid.ifft(grid.derivative_operator(N, L, 2, 1) * u_hat, N, 2)
    lap = grid.ifft(grid.laplacian_symbol(N, L, 2) * u_hat, N, 2)
    np.testing.assert_allclose(uy, -3 * jnp.sin(2 * X) * jnp.sin(3 * Y), atol=1e-12)
    np.testing.assert_allclose(lap, -13 * u, atol=1e-11)


def test_dealias_mask_two_thirds_rule():
    m = grid.dealias_mask(256, 1)
    assert m.shape == (129,) and m.sum() == 86  # keeps |k| <= 85 < 256/3
    m2 = grid.dealias_mask(12, 2)
    assert m2.shape == (12, 7)
    assert m2[3, 3] and not m2[4, 0] and not m2[0, 4] and m2[-3, 3] and not m2[-4, 1]


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("dims", [1, 2])
def test_resample_band_limited_round_trip(dims):
    key = jax.random.PRNGKey(0)
    N, N_fine = 16, 48
    # band-limited field: random modes |m| < 8 on the coarse grid
    coarse = jax.random.normal(key, (N,) * dims)
    coarse = grid.ifft(grid.fft(coarse, dims) * (grid.dealias_mask(N, dims, 0.9)), N, dims)
    fine = grid.resample(coarse, N_fine, dims)
    assert fine.shape == (N_fine,) * dims
    # fine grid samples the same trigonometric polynomial: every 3rd point equals the coarse one
    sl = (slice(None, None, 3),) * dims
    np.testing.assert_allclose(fine[sl], coarse, atol=1e-12)
    np.testing.assert_allclose(grid.resample(fine, N, dims), coarse, atol=1e-12)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("dims,N", [(1, 32), (1, 31), (2, 16)])
def test_energy_spectrum_parseval(dims, N):
    u = jax.random.normal(jax.random.PRNGKey(1), (N,) * dims)
    E = grid.energy_spectrum(u, dims)
    np.testing.assert_allclose(E.sum(), jnp.mean(u**2), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_energy_spectrum_single_mode():
    N, L = 32, 1.0
    x = grid.grid_points(N, L)
    E = grid.energy_spectrum(2.0 * jnp.cos(2 * np.pi * 5 * x) + 1.0, 1)
    expected = np.zeros(17)
    expected[0], expected[5] = 1.0, 2.0  # mean^2 and A^2/2
    np.testing.assert_allclose(E, expected, atol=1e-13)


@pytest.mark.usefixtures("x64")
def test_energy_spectrum_rectangular_2d_batch():
    nx, ny = 12, 8
    x = np.arange(nx)[:, None] / nx
    y = np.arange(ny)[None, :] / ny
    # mode m = (2, 1): |m| = sqrt(5) -> shell 2, energy A^2 / 2; mode (3, 3): sqrt(18) -> shell 4
    u = 2.0 * np.cos(2 * np.pi * (2 * x + y)) + np.sin(2 * np.pi * (3 * x + 3 * y))
    E = grid.energy_spectrum(jnp.stack([jnp.asarray(u), 0.5 * jnp.asarray(u)]), 2)
    assert E.shape == (2, grid.num_shells(nx, ny)) == (2, 8)  # floor(hypot(6, 4) + 1/2) + 1
    expected = np.zeros(8)
    expected[2], expected[4] = 2.0, 0.5
    np.testing.assert_allclose(E[0], expected, atol=1e-13)
    np.testing.assert_allclose(E[1], expected / 4, atol=1e-13)
    r = jax.random.normal(jax.random.PRNGKey(3), (3, nx, ny))
    np.testing.assert_allclose(grid.energy_spectrum(r, 2).sum(-1), jnp.mean(r**2, (-2, -1)),
                               rtol=1e-12)


def _factorial(n):
    r = 1.0
    for i in range(2, n + 1):
        r *= i
    return r


def test_phi_functions_accurate_in_float32_and_float64():
    z = np.concatenate([-np.logspace(-8, 4, 60), np.logspace(-8, 1, 30), [0.0]])
    refs = []
    for j in (1, 2, 3):
        series = sum(z**n / _factorial(n + j) for n in range(40))
        with np.errstate(all="ignore"):
            direct = {1: np.expm1(z) / z, 2: (np.expm1(z) - z) / z**2,
                      3: (np.expm1(z) - z - z**2 / 2) / z**3}[j]
        refs.append(np.where(np.abs(z) < 2, series, direct))
    with jax.enable_x64(True):
        _, *phis = phi_functions(jnp.asarray(z))
        for p, r in zip(phis, refs, strict=True):
            np.testing.assert_allclose(np.asarray(p), r, rtol=1e-13)
    _, *phis32 = phi_functions(jnp.asarray(z, dtype=jnp.float32))
    for p, r in zip(phis32, refs, strict=True):
        assert p.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(p), r, rtol=2e-6)
