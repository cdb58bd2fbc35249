"""FNO: spectral convolution vs NumPy, counts, equivariance, resolution transfer."""

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from pdekit.configs import package_dir
from pdekit.models.fno import FNO, SpectralConv

KEY = jax.random.key(0)


def n_params(model) -> int:
    return sum(x.size for x in jax.tree.leaves(model) if hasattr(x, "shape") and hasattr(x, "dtype"))


def _tiny(spatial_dims, **kw):
    hp = dict(width=8, modes=4, num_layers=2, projection_channels=16) | kw
    return FNO(spatial_dims=spatial_dims, history=2, future=3, channels=2, num_cond=2,
               key=KEY, **hp)


def test_spectral_conv_1d_matches_einsum_in_fourier_space():
    conv = SpectralConv(1, 3, 5, 4, key=KEY)  # in != out
    x = np.asarray(jax.random.normal(jax.random.key(1), (3, 16)), np.float64)
    w = np.asarray(conv.weight_real) + 1j * np.asarray(conv.weight_imag)
    xf = np.fft.rfft(x, axis=-1)
    yf = np.zeros((5, 9), complex)
    for k in range(4):
        yf[:, k] = xf[:, k] @ w[:, :, k]
    ref = np.fft.irfft(yf, n=16, axis=-1)
    out = eqx.filter_jit(lambda m, v: m(v))(conv, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(np.asarray(out), ref,
                               atol=1e-5)


def test_spectral_conv_2d_mode_convention():
    """Axis 0 keeps k0 in {0..m-1} U {-m..-1} (weight index m..2m-1), last axis k1 in 0..m-1."""
    m = 3
    conv = SpectralConv(2, 2, 4, m, key=KEY)
    assert conv.weight_real.shape == (2, 4, 2 * m, m)
    x = np.asarray(jax.random.normal(jax.random.key(2), (2, 12, 10)), np.float64)
    w = np.asarray(conv.weight_real) + 1j * np.asarray(conv.weight_imag)
    xf = np.fft.rfft2(x)
    yf = np.zeros((4, 12, 6), complex)
    for a, k0 in enumerate(list(range(m)) + list(range(-m, 0))):
        for k1 in range(m):
            yf[:, k0, k1] = xf[:, k0, k1] @ w[:, :, a, k1]
    ref = np.fft.irfft2(yf, s=(12, 10))
    out = eqx.filter_jit(lambda m, v: m(v))(conv, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(np.asarray(out), ref,
                               atol=1e-5)


def test_preset_parameter_counts():
    """Hand count: lift (hc*w + w), per layer 2*w*w*prod(modes) (complex) + w*w + w,
    projection (w*128 + 128) + (128*fc + fc). The 1D count is the original Burgers FNO's
    549,569 minus the 64 weights of its grid-coordinate input channel, which we omit."""
    cfg1 = OmegaConf.load(package_dir() / "model" / "fno1d.yaml")
    m1 = eqx.filter_eval_shape(lambda k: hydra.utils.instantiate(
        cfg1, spatial_dims=1, history=1, future=1, channels=1, num_cond=2, key=k), KEY)
    w, md = 64, 16
    assert n_params(m1) == (w + w) + 4 * (2 * w * w * md + w * w + w) + (w * 128 + 128) + 129
    assert n_params(m1) == 549_505
    cfg2 = OmegaConf.load(package_dir() / "model" / "fno2d.yaml")
    m2 = eqx.filter_eval_shape(lambda k: hydra.utils.instantiate(
        cfg2, spatial_dims=2, history=4, future=1, channels=3, num_cond=2, key=k), KEY)
    w, md = 32, 12
    assert n_params(m2) == (12 * w + w) + 4 * (2 * w * w * 2 * md * md + w * w + w) + (
        w * 128 + 128) + (128 * 3 + 3)
    assert n_params(m2) == 2_368_547
    assert isinstance(m1, FNO) and m1.spatial_dims == 1 and m2.spatial_dims == 2


@pytest.mark.parametrize("spatial_dims,shift", [(1, (5,)), (2, (3, 7))])
def test_translation_equivariance_any_shift(spatial_dims, shift):
    model = _tiny(spatial_dims)
    spatial = (32,) * spatial_dims
    u = jax.random.normal(jax.random.key(3), (2, 2, *spatial))
    cond = jnp.array([0.1, 0.2])
    axes = tuple(range(2, 2 + spatial_dims))
    f = jax.jit(lambda u: model(u, cond))
    y = f(u)
    assert y.shape == (3, 2, *spatial)
    err = jnp.abs(f(jnp.roll(u, shift, axes)) - jnp.roll(y, shift, axes)).max()
    assert err < 1e-5 * jnp.abs(y).max() + 1e-6


def _spectral_interp(u: np.ndarray, n_fine: int) -> np.ndarray:
    """Zero-pad the 1D spectrum (Nyquist mode dropped) and rescale amplitudes."""
    n = u.shape[-1]
    uf = np.fft.rfft(u, axis=-1)[..., : n // 2]
    return np.fft.irfft(uf, n=n_fine, axis=-1) * (n_fine / n)


def test_resolution_transfer():
    """Same weights on a 2x grid of the spectrally interpolated input give (nearly) the
    spectral interpolation of the 1x output. Not exact: the pointwise GELU creates modes above
    N/2 that alias on the coarse grid. Measured gap 2.06e-4; nearest-neighbour upsampling of
    the coarse output (a wrong comparison) is off by 1.47e-2."""
    rng = np.random.default_rng(0)
    n = 64
    x = np.arange(n) / n
    u = sum(rng.normal() * np.cos(2 * np.pi * k * x) + rng.normal() * np.sin(2 * np.pi * k * x)
            for k in range(1, 7))[None, None]
    model = FNO(spatial_dims=1, history=1, future=1, channels=1, num_cond=0, width=16, modes=8,
                num_layers=4, key=KEY)
    f = jax.jit(lambda v: model(v, jnp.zeros(0)))
    y_coarse = np.asarray(f(jnp.asarray(u, jnp.float32)), np.float64)
    y_fine = np.asarray(f(jnp.asarray(_spectral_interp(u, 2 * n), jnp.float32)), np.float64)

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    gap = rel(_spectral_interp(y_coarse, 2 * n), y_fine)
    wrong = rel(np.repeat(y_coarse, 2, axis=-1), y_fine)
    assert gap < 3e-4
    assert wrong > 20 * gap


def test_bad_inputs():
    model = _tiny(1, modes=8)
    with pytest.raises(ValueError, match="modes=8"):
        model(jnp.ones((2, 2, 12)), jnp.zeros(2))
    with pytest.raises(ValueError, match="history=2"):
        model(jnp.ones((3, 2, 32)), jnp.zeros(2))
    with pytest.raises(ValueError, match="cond"):
        model(jnp.ones((2, 2, 32)), jnp.zeros(3))
