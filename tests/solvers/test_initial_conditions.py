import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import (
    NavierStokes2D,
    energy_spectrum,
    gaussian_random_field,
    random_vorticity,
    sine_sum,
)
from pdekit.solvers.grid import fft

pytestmark = pytest.mark.usefixtures("x64")


def test_sine_sum_uses_only_modes_one_and_two_and_is_bounded():
    L, N = 64.0, 256
    u = jax.vmap(lambda k: sine_sum(k, resolution=N, L=L))(jax.random.split(jax.random.PRNGKey(0), 16))
    spec = np.abs(np.asarray(fft(u, 1)))
    assert np.all(spec[:, [0, *range(3, 129)]] < 1e-9)
    assert np.all(spec[:, 1:3].max(axis=1) > 0)
    assert float(jnp.abs(u).max()) <= 10 * 0.5


def test_gaussian_random_field_mode_variances_match_covariance():
    # Var of the coefficient of exp(i k x)/sqrt(L) is scale (k^2 + tau^2)^-alpha (FNO Burgers)
    N, L, scale, tau, alpha = 64, 1.0, 625.0, 5.0, 2.0
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    u = jax.vmap(lambda k: gaussian_random_field(k, resolution=N, L=L, dims=1, scale=scale, tau=tau, alpha=alpha))(keys)
    # coefficient c_m = sqrt(L) * u_hat_m / N ; E|c_m|^2 = lambda_m (complex: re+im)
    c = np.asarray(fft(u, 1)) * np.sqrt(L) / N
    m = np.arange(1, 6)
    k = 2 * np.pi * m / L
    lam = scale * (k**2 + tau**2) ** (-alpha)
    measured = np.mean(np.abs(c[:, 1:6]) ** 2, axis=0)
    np.testing.assert_allclose(measured, lam, rtol=0.1)  # 4000 samples: ~2.2% std error
    np.testing.assert_allclose(np.asarray(u).mean(axis=1), 0.0, atol=1e-12)


def test_random_vorticity_speed_and_spectral_peak():
    N = 64
    w = random_vorticity(jax.random.PRNGKey(1), resolution=N, peak_wavenumber=4.0, max_speed=7.0)
    s = NavierStokes2D(resolution=N, dt=1e-3, nu=1e-3)
    u, v = s.velocity(w)
    np.testing.assert_allclose(float(jnp.sqrt(u**2 + v**2).max()), 7.0, rtol=1e-10)
    ke = energy_spectrum(u, 2) + energy_spectrum(v, 2)
    keys = jax.random.split(jax.random.PRNGKey(2), 32)
    ws = jax.vmap(lambda k: random_vorticity(k, resolution=N))(keys)
    uv = jax.vmap(s.velocity)(ws)
    ke = (jax.vmap(lambda a: energy_spectrum(a, 2))(uv[0]) + jax.vmap(lambda a: energy_spectrum(a, 2))(uv[1])).mean(0)
    assert int(np.argmax(np.asarray(ke))) in (3, 4, 5)
    assert abs(float(w.mean())) < 1e-12
