"""SineNet: pinned parameter counts of the ~35.49 M presets, equivariance, gradients."""

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import pytest
from omegaconf import OmegaConf

from pdekit.configs import package_dir
from pdekit.models.sinenet import SineNet

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


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["sinenet8", "sinenet4", "sinenet2"])
def test_preset_gradient_finite(preset):
    cfg = OmegaConf.load(package_dir() / "model" / f"{preset}.yaml")
    model = hydra.utils.instantiate(cfg, key=KEY, **NS2D)
    u = jax.random.normal(jax.random.key(3), (4, 3, 16, 16))
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(m(u, jnp.zeros(2)) ** 2)))(model)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(g, eqx.is_array)))
