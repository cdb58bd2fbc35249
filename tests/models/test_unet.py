"""UNetMod: pinned parameter counts, conditioning, zero-init, equivariance, gradients."""

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import pytest
from omegaconf import OmegaConf

from pdekit.configs import package_dir
from pdekit.models.unet import UNetMod

KEY = jax.random.key(0)
# 3 levels -> two stride-2 halvings: equivariant under shifts by multiples of 4 cells.
TINY = dict(hidden_channels=8, channel_multipliers=(1, 2, 2), num_blocks=1, zero_init=False)
# One jitted forward shared by all tests: same structure and shapes hit the compile cache
# (XLA compile time, not compute, dominates these CPU tests).
FWD = eqx.filter_jit(lambda m, v, c: m(v, c))


def n_params(model) -> int:
    return sum(x.size for x in jax.tree.leaves(model) if hasattr(x, "shape") and hasattr(x, "dtype"))


def _preset(name, **runtime):
    cfg = OmegaConf.load(package_dir() / "model" / f"{name}.yaml")
    return eqx.filter_eval_shape(lambda k: hydra.utils.instantiate(cfg, key=k, **runtime), KEY)


def test_refiner_backbone_has_published_parameter_count():
    """PDE-Refiner KS network: 2 input frames (state + noised target), 1 output, 1 channel,
    conditioning on dt, dx and the refinement step -> exactly the PyTorch module's count."""
    model = _preset("unetmod1d_64", spatial_dims=1, history=2, future=1, channels=1, num_cond=3)
    assert isinstance(model, UNetMod)
    assert n_params(model) == 53_924_225


def test_other_preset_counts():
    small = _preset("unetmod1d_small", spatial_dims=1, history=2, future=1, channels=1,
                    num_cond=3)
    assert n_params(small) == 2_208_449
    ns2d = _preset("unetmod2d_64", spatial_dims=2, history=4, future=1, channels=3, num_cond=2)
    assert n_params(ns2d) == 146_599_683


def test_conditioning_embedding_count_by_hand():
    """num_cond MLPs (h -> 4h -> 4h) plus one Linear(4h, c_out) per residual block; the
    difference between num_cond=2 and num_cond=0 is exactly the two MLPs."""
    h, e = 8, 32

    def build(num_cond):
        return eqx.filter_eval_shape(lambda k: UNetMod(
            spatial_dims=1, history=1, future=1, channels=1, num_cond=num_cond, key=k,
            **TINY), KEY)

    m2 = build(2)
    assert n_params(m2.embedding) == 2 * (h * e + e + e * e + e) == 2_688
    assert n_params(m2) - n_params(build(0)) == 2_688
    # residual-block conditioning projections: sum over blocks of (4h * c_out + c_out)
    blocks = [b for b in (*m2.down, *m2.middle, *m2.up) if hasattr(b, "cond_proj")]
    c_outs = [b.conv1.weight.shape[0] for b in blocks]
    assert sum(n_params(b.cond_proj) for b in blocks) == sum(e * c + c for c in c_outs)
    adagn = eqx.filter_eval_shape(lambda k: UNetMod(
        spatial_dims=1, history=1, future=1, channels=1, num_cond=2, key=k,
        use_scale_shift_norm=True, **TINY), KEY)
    assert n_params(adagn) - n_params(m2) == sum(e * c + c for c in c_outs)


@pytest.fixture(scope="module")
def tiny2d():
    return UNetMod(spatial_dims=2, history=2, future=1, channels=2, num_cond=2, key=KEY, **TINY)


@pytest.fixture(scope="module")
def tiny1d():
    return UNetMod(spatial_dims=1, history=2, future=2, channels=1, num_cond=3, key=KEY, **TINY)


def _fwd(model, u, cond):
    return FWD(model, u, cond)


def test_zero_init_zeroes_last_convs():
    """Default init: conv2 of every residual block and the output conv are exactly zero (so
    the untrained network outputs 0, PDEArena's zero_module); conv1 is not."""
    model = UNetMod(spatial_dims=1, history=2, future=1, channels=1, num_cond=3, key=KEY,
                    **(TINY | dict(zero_init=True)))
    blocks = [b for b in (*model.down, *model.middle, *model.up) if hasattr(b, "conv2")]
    assert len(blocks) == 3 + 2 + 3 * 2
    for b in blocks:
        assert float(jnp.abs(b.conv2.weight).max()) == 0.0 == float(jnp.abs(b.conv2.bias).max())
        assert float(jnp.abs(b.conv1.weight).max()) > 0.0
    assert float(jnp.abs(model.out_conv.weight).max()) == 0.0


@pytest.mark.parametrize("dims", [1, 2])
def test_translation_equivariance(dims, tiny1d, tiny2d):
    """Shifts by multiples of 2**(levels-1) = 4 cells commute with the network exactly (up to
    rounding): every stride-2 conv then sees the same sampling phase. A shift by 1 cell does
    not (the stride-2 convs alias), which the second assertion demonstrates."""
    model = tiny1d if dims == 1 else tiny2d
    u = jax.random.normal(jax.random.key(1), (2, model.channels) + (16,) * dims)
    cond = jnp.arange(model.num_cond) * 0.1 + 0.1
    axes = tuple(range(2, 2 + dims))
    y = FWD(model, u, cond)
    scale = float(jnp.abs(y).max())
    err4 = float(jnp.abs(FWD(model, jnp.roll(u, 4, axes), cond) - jnp.roll(y, 4, axes)).max())
    err1 = float(jnp.abs(FWD(model, jnp.roll(u, 1, axes), cond) - jnp.roll(y, 1, axes)).max())
    assert err4 < 1e-5 * scale
    assert err1 > 1e-3 * scale


def test_conditioning_changes_output(tiny1d):
    u = jax.random.normal(jax.random.key(2), (2, 1, 16))
    y1 = _fwd(tiny1d, u, jnp.array([0.1, 0.2, 0.0]))
    y2 = _fwd(tiny1d, u, jnp.array([0.1, 0.2, 1.0]))
    assert y1.shape == (2, 1, 16)
    assert float(jnp.abs(y1 - y2).max()) > 1e-3 * float(jnp.abs(y1).max())


def test_bad_inputs(tiny1d):
    with pytest.raises(ValueError, match="divisible by 4"):
        tiny1d(jnp.ones((2, 1, 18)), jnp.ones(3))
    with pytest.raises(ValueError, match="channels=1"):
        tiny1d(jnp.ones((2, 3, 16)), jnp.ones(3))
    with pytest.raises(ValueError, match="multiple of 8"):
        UNetMod(spatial_dims=1, history=1, future=1, channels=1, num_cond=0, key=KEY,
                hidden_channels=12)


@pytest.mark.slow
def test_small_preset_gradient_finite():
    cfg = OmegaConf.load(package_dir() / "model" / "unetmod1d_small.yaml")
    model = hydra.utils.instantiate(cfg, spatial_dims=1, history=2, future=1, channels=1,
                                    num_cond=3, key=KEY, zero_init=False)
    u = jax.random.normal(jax.random.key(4), (2, 1, 32))
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(m(u, jnp.array([0.2, 0.25, 1.0])) ** 2)))(
        model)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(g, eqx.is_array)))


@pytest.mark.slow
@pytest.mark.parametrize("preset,dims", [("unetmod1d_64", 1), ("unetmod2d_64", 2)])
def test_full_preset_gradient_finite(preset, dims):
    cfg = OmegaConf.load(package_dir() / "model" / f"{preset}.yaml")
    model = hydra.utils.instantiate(cfg, spatial_dims=dims, history=2, future=1, channels=1,
                                    num_cond=3, key=KEY, zero_init=False)
    u = jax.random.normal(jax.random.key(5), (2, 1) + (16,) * dims)
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(m(u, jnp.array([0.2, 0.25, 1.0])) ** 2)))(
        model)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(g, eqx.is_array)))
