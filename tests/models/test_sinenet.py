"""SineNet: pinned parameter counts of the ~35.49 M presets, equivariance, gradients, the x2
stencil upsampling against independent references, circular vs zero padding."""

import math

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from pdekit.configs import package_dir
from pdekit.models._upsample import upsample2
from pdekit.models.layers import CircularConv, circular_upsample
from pdekit.models.sinenet import SineNet, conv, upsample

KEY = jax.random.key(0)
# PDEArena NavierStokes2D shape: scalar + 2 velocity channels, 4 history frames, 1 future.
NS2D = dict(spatial_dims=2, history=4, future=1, channels=3, num_cond=2)
TINY = dict(hidden_channels=8, num_waves=2, channel_multiplier=1.5, num_levels=2)
FWD = eqx.filter_jit(lambda m, v, c: m(v, c))


def n_params(model) -> int:
    return sum(x.size for x in jax.tree.leaves(model) if hasattr(x, "shape") and hasattr(x, "dtype"))


def _preset(name, **runtime):
    cfg = OmegaConf.load(package_dir() / "model" / f"{name}.yaml")
    return eqx.filter_eval_shape(lambda k: hydra.utils.instantiate(cfg, key=k, **runtime), KEY)


@pytest.mark.parametrize("preset,waves,count", [("sinenet8", 8, 35_490_219),
                                                ("sinenet4", 4, 35_493_699),
                                                ("sinenet2", 2, 35_499_989)])
def test_preset_counts(preset, waves, count):
    """sinenet8's count equals the 35,490,219 stated in the public SineNet registry."""
    model = _preset(preset, **NS2D)
    assert isinstance(model, SineNet)
    assert model.waves.down[0].conv1.weight.shape[0] == waves  # stacked waves
    assert n_params(model) == count
    assert abs(count - 35.49e6) / 35.49e6 < 5e-3


def test_disentangle_count_by_hand():
    """Disentangling adds h input channels to the first 3x3 conv of encoder levels >= 2:
    waves * sum_{l=2..L} 9 * h * c_l weights (2D). Channels: int(8 * 1.5**l) = 8,12,18,27,40."""
    kw = dict(spatial_dims=2, history=1, future=1, channels=1, num_cond=0, hidden_channels=8,
              num_waves=3, channel_multiplier=1.5, num_levels=4)
    on = eqx.filter_eval_shape(lambda k: SineNet(key=k, **kw), KEY)
    off = eqx.filter_eval_shape(lambda k: SineNet(key=k, disentangle=False, **kw), KEY)
    assert n_params(on) - n_params(off) == 3 * 9 * 8 * (18 + 27 + 40)


@pytest.fixture(scope="module")
def tiny2d():
    return SineNet(**NS2D, key=KEY, **TINY)


@pytest.mark.parametrize("dims", [1, 2])
def test_translation_equivariance(dims, tiny2d):
    """Shifts by multiples of 2**num_levels = 4 cells commute with the network (avg-pool and
    periodic cubic upsampling then keep their phase); a 1-cell shift does not."""
    model = tiny2d if dims == 2 else SineNet(spatial_dims=1, history=2, future=1, channels=2,
                                             num_cond=0, key=KEY, **TINY)
    u = jax.random.normal(jax.random.key(1), (model.history, model.channels) + (16,) * dims)
    cond = jnp.zeros(model.num_cond)
    axes = tuple(range(2, 2 + dims))
    y = FWD(model, u, cond)
    assert y.shape == (model.future, model.channels) + (16,) * dims
    scale = float(jnp.abs(y).max())
    err4 = float(jnp.abs(FWD(model, jnp.roll(u, 4, axes), cond) - jnp.roll(y, 4, axes)).max())
    err1 = float(jnp.abs(FWD(model, jnp.roll(u, 1, axes), cond) - jnp.roll(y, 1, axes)).max())
    assert err4 < 1e-5 * scale
    assert err1 > 1e-3 * scale


def test_bad_inputs(tiny2d):
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny2d(jnp.ones((4, 3, 18, 16)), jnp.zeros(2))
    with pytest.raises(ValueError, match="interpolation"):
        SineNet(**NS2D, key=KEY, interpolation="bicubic")
    with pytest.raises(ValueError, match="padding"):
        SineNet(**NS2D, key=KEY, padding="reflect")
    with pytest.raises(ValueError, match="upsample_impl"):
        SineNet(**NS2D, key=KEY, upsample_impl="dense")
    with pytest.raises(ValueError, match="upsample_impl='stencil'"):
        SineNet(**NS2D, key=KEY, upsample_impl="resize", padding="zeros")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["sinenet8", "sinenet4", "sinenet2"])
def test_preset_gradient_finite(preset):
    cfg = OmegaConf.load(package_dir() / "model" / f"{preset}.yaml")
    model = hydra.utils.instantiate(cfg, key=KEY, **NS2D)
    u = jax.random.normal(jax.random.key(3), (4, 3, 16, 16))
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(m(u, jnp.zeros(2)) ** 2)))(model)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(g, eqx.is_array)))


def _torch_cubic_coeffs(t, a):
    """torch's upsample_bicubic2d coefficients of the cells floor(s) - 1 .. floor(s) + 2 at
    fraction t = s - floor(s) (cubic convolution, parameter A = a)."""
    c1 = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1
    c2 = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def _reference_1d(x, method, boundary):
    """float64 x2 interpolation along the last axis, one fine cell at a time: coarse coordinate
    s = (j + 1/2)/2 - 1/2 (align_corners=False), the four cubic (or two linear) weights of the
    cells around s, cell indices wrapped ("wrap") or clamped to the border ("edge", torch)."""
    n = x.shape[-1]
    out = np.zeros(x.shape[:-1] + (2 * n,))
    for j in range(2 * n):
        s = (j + 0.5) / 2 - 0.5
        base, t = math.floor(s), s - math.floor(s)
        if method == "linear":
            cells, w = [base, base + 1], [1 - t, t]
        else:
            cells = [base - 1, base, base + 1, base + 2]
            w = _torch_cubic_coeffs(t, {"cubic": -0.5, "cubic_torch": -0.75}[method])
        idx = [c % n if boundary == "wrap" else min(max(c, 0), n - 1) for c in cells]
        out[..., j] = x[..., idx] @ np.asarray(w)
    return out


RNG = np.random.default_rng(0)
X2D = RNG.normal(size=(2, 6, 10)).astype(np.float32)  # (channels, 6, 10): non-square, even


_POINTWISE = ("linear", "cubic", "cubic_torch")  # the kernels _reference_1d implements


@jax.jit
def _upsamplings(x):
    """Every stencil method (both boundaries where the pointwise reference exists), the periodic
    jax.image.resize references (padded by 6 > any support, cropped) and the former 2-cell-halo
    resize path, in one compilation."""
    pad = 6
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="wrap")
    crop = (slice(None), slice(2 * pad, -2 * pad), slice(2 * pad, -2 * pad))
    out = {}
    for method in ("linear", "cubic", "cubic_torch", "lanczos3", "lanczos5"):
        for boundary in ("wrap", "edge") if method in _POINTWISE else ("wrap",):
            out[method, boundary] = upsample2(x, method, boundary)
        if method != "cubic_torch":  # not a jax.image.resize method
            out[method, "resize"] = jax.image.resize(
                xp, (x.shape[0], 2 * xp.shape[1], 2 * xp.shape[2]), method,
                precision=jax.lax.Precision.HIGHEST)[crop]
        if method in ("cubic", "lanczos3"):
            out[method, "old"] = circular_upsample(x, 2, method)
    return out


@pytest.fixture(scope="module")
def upsamplings():
    return jax.tree.map(np.asarray, _upsamplings(jnp.asarray(X2D)))


@pytest.mark.parametrize("method", _POINTWISE)
@pytest.mark.parametrize("boundary", ["wrap", "edge"])
def test_stencil_upsample_matches_pointwise_reference(method, boundary, upsamplings):
    """2D = the 1D reference along each axis in turn (the interpolation is separable)."""
    ref = _reference_1d(X2D.astype(np.float64), method, boundary)  # last axis
    ref = np.swapaxes(_reference_1d(np.swapaxes(ref, 1, 2), method, boundary), 1, 2)
    out = upsamplings[method, boundary]
    assert out.shape == (2, 12, 20) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["linear", "cubic", "lanczos3", "lanczos5"])
def test_stencil_upsample_is_periodic_resize(method, upsamplings):
    """Equals jax.image.resize of the periodic extension. The former path (2-cell halo, dense
    resize) agrees for cubic, but not for lanczos3, whose support is wider than its halo."""
    ref = upsamplings[method, "resize"]
    np.testing.assert_allclose(upsamplings[method, "wrap"], ref, rtol=1e-5, atol=1e-5)
    if (method, "old") in upsamplings:
        old = np.abs(upsamplings[method, "old"] - ref).max()
        assert (old < 1e-5) if method == "cubic" else (old > 1e-3)


def test_zero_padding_differs_only_at_the_boundary(upsamplings):
    """Zero-padded conv = the circular conv of the input embedded in a zero frame, cropped; it
    equals the circular conv away from the border. Edge-repeat upsampling equals the periodic
    one except in the 3 fine cells next to each border (whose cubic taps leave the grid)."""
    x = jnp.asarray(X2D)
    layer = CircularConv(2, 2, 3, 3, key=KEY)
    zeros, circ, framed = (np.asarray(a) for a in jax.jit(lambda x: (
        conv(layer, x, "zeros"), conv(layer, x, "circular"),
        layer(jnp.pad(x, ((0, 0), (1, 1), (1, 1))))[:, 1:-1, 1:-1]))(x))
    np.testing.assert_allclose(zeros, framed, rtol=1e-5, atol=1e-6)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(zeros[inner], circ[inner], atol=1e-6)
    border = np.ones(zeros.shape[1:], bool)
    border[1:-1, 1:-1] = False
    assert np.all(np.abs(zeros - circ)[:, border].max(axis=0) > 1e-4)

    up_e, up_w = upsamplings["cubic", "edge"], upsamplings["cubic", "wrap"]
    wave_up = jax.jit(lambda x: [upsample(x, "cubic", p, "stencil") for p in ("zeros", "circular")])
    for got, want in zip(wave_up(x), (up_e, up_w), strict=True):  # what a Wave calls
        np.testing.assert_array_equal(np.asarray(got), want)
    fine_inner = (slice(None), slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(up_e[fine_inner], up_w[fine_inner], atol=1e-6)
    for j in (0, 1, 2, -3, -2, -1):
        assert np.abs(up_e[:, j] - up_w[:, j]).mean() > 1e-2
        assert np.abs(up_e[:, :, j] - up_w[:, :, j]).mean() > 1e-2


def _conv_paddings(jaxpr) -> list:
    """The `padding` of every conv_general_dilated in a jaxpr, sub-jaxprs (scan) included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            out.append(tuple(tuple(p) for p in eqn.params["padding"]))
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if hasattr(sub, "eqns"):
                    out += _conv_paddings(sub)
    return out


def test_padding_and_upsample_impl_keep_parameters(tiny2d):
    """padding and upsample_impl change no parameter (same key: identical leaves). Every 3x3
    conv of the traced model (lift, the waves' blocks in the scan, projection) pads by 1 with
    zeros for padding="zeros" and by nothing (wrapped beforehand) for "circular"."""
    leaves = jax.tree.leaves(eqx.filter(tiny2d, eqx.is_array))
    zeros = SineNet(**NS2D, key=KEY, **TINY, padding="zeros")
    resize = SineNet(**NS2D, key=KEY, **TINY, upsample_impl="resize")
    for other in (zeros, resize):
        assert all(np.array_equal(a, b) for a, b in
                   zip(leaves, jax.tree.leaves(eqx.filter(other, eqx.is_array)), strict=True))
    u, cond = jnp.zeros((4, 3, 16, 16)), jnp.zeros(2)
    n_convs = 2 + 2 * 2 * TINY["num_levels"]  # lift, proj, 2 per block, down + up blocks
    for model, pad in ((tiny2d, 0), (zeros, 1)):
        pads = _conv_paddings(jax.make_jaxpr(lambda u, m=model: m(u, cond))(u).jaxpr)
        assert pads == [((pad, pad), (pad, pad))] * n_convs, pads
