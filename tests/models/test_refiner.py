"""PDE-Refiner: noise schedule, K+1 calls per prediction, determinism, loss, a toy training run."""

import importlib.util
import math
import re
from functools import partial

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
from hydra import compose, initialize_config_dir

from pdekit.configs import package_dir
from pdekit.models.base import uses_float32_data
from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import zero_params
from pdekit.models.refiner import PUBLISHED_MIN_NOISE_STD, PDERefiner
from pdekit.models.unet import UNetMod
from pdekit.training.model import cast_floating

CONFIGS = package_dir()
COND = jnp.array([0.3, 0.1])  # (dt, dx)
N = 32


class TinyBackbone(eqx.Module):
    """1D circular conv net obeying the model interface; the conditioning vector, mapped by the
    `cond_norm` the refiner builds (the refinement step becomes k * 1000 / K, divided here by
    1000), is embedded by an MLP and added to the hidden features."""

    conv_in: eqx.nn.Conv1d
    conv_mid: eqx.nn.Conv1d
    conv_out: eqx.nn.Conv1d
    embed: eqx.nn.MLP
    cond_norm: CondNorm
    future: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __init__(self, *, spatial_dims, history, future, channels, num_cond, key, cond_norm,
                 width=24):
        assert spatial_dims == 1
        k1, k2, k3, k4 = jr.split(key, 4)
        self.conv_in = eqx.nn.Conv1d(history * channels, width, 5, padding=2,
                                     padding_mode="CIRCULAR", key=k1)
        self.conv_mid = eqx.nn.Conv1d(width, width, 5, padding=2, padding_mode="CIRCULAR", key=k2)
        self.conv_out = eqx.nn.Conv1d(width, future * channels, 5, padding=2,
                                      padding_mode="CIRCULAR", key=k3)
        self.embed = eqx.nn.MLP(num_cond, width, 32, 1, activation=jax.nn.gelu, key=k4)
        self.future, self.channels, self.cond_norm = future, channels, cond_norm

    def __call__(self, u, cond, *, key=None):
        c = self.cond_norm(cond).at[-1].divide(1000.0)
        x = u.reshape(-1, u.shape[-1])
        h = jax.nn.gelu(self.conv_in(x) + self.embed(c)[:, None])
        h = jax.nn.gelu(self.conv_mid(h) + h)
        return self.conv_out(h).reshape(self.future, self.channels, u.shape[-1])


class Recording(eqx.Module):
    """Wraps a backbone; every *executed* call reports its step conditioning to `record`
    through `jax.debug.callback` (traced once inside the scan, but run once per iteration)."""

    inner: eqx.Module
    record: object = eqx.field(static=True)

    def __call__(self, u, cond, *, key=None):
        jax.debug.callback(self.record, cond[-1], ordered=True)
        return self.inner(u, cond)


def make(K=3, **kw):
    return PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2, key=jr.key(0),
                      backbone=TinyBackbone, num_refinement_steps=K, **kw)


def fields(key, batch):
    """Smooth random periodic fields (a few Fourier modes), shape (batch, 1, 1, N)."""
    x = jnp.arange(N) * 2 * jnp.pi / N
    a = jr.normal(key, (batch, 4, 2)) / jnp.arange(1, 5)[None, :, None]
    m = jnp.arange(1, 5)[:, None]
    u = jnp.einsum("bm,mn->bn", a[..., 0], jnp.cos(m * x)) + jnp.einsum(
        "bm,mn->bn", a[..., 1], jnp.sin(m * x))
    return u[:, None, None, :]


def linear_map(u):
    """The toy 'PDE step': a fixed circulant linear map of the state."""
    return 0.8 * u + 0.3 * jnp.roll(u, 1, axis=-1) - 0.1 * jnp.roll(u, -2, axis=-1)


def test_noise_schedule_matches_public_code_convention():
    """sigma_k = min_noise_std**(k/K); with min_noise_std = sqrt(4e-7) the stds agree within
    0.5% with the effective noise std sqrt(1 - alpha_bar) of the public DDPM setup (betas
    4e-7**(j/K) for j = K..0, cumulative product), step k <-> diffusion index K - k."""
    assert math.isclose(PUBLISHED_MIN_NOISE_STD, 6.324555e-4, rel_tol=1e-6)
    K, var_min = 3, 4e-7
    ours = np.asarray(make(K).noise_stds)
    np.testing.assert_allclose(ours, [1.0, 0.0858, 0.007368, 6.3246e-4], rtol=1e-3)
    betas = np.array([var_min ** (j / K) for j in reversed(range(K + 1))])
    public_std = np.sqrt(1.0 - np.cumprod(1.0 - betas))  # diffusion index t = 0..K
    for k in range(1, K + 1):
        assert abs(ours[k] / public_std[K - k] - 1.0) < 5e-3
    assert public_std[K] == 1.0  # t = K is pure noise: the direct prediction, our k = 0
    with pytest.raises(ValueError, match="standard deviation"):
        make(K, min_noise_std=1.5)
    with pytest.raises(ValueError, match="num_refinement_steps"):
        make(0)


def test_exactly_k_plus_one_backbone_calls_per_prediction():
    K, calls = 4, []
    model = make(K)
    rec = eqx.tree_at(lambda m: m.backbone, model,
                      Recording(model.backbone, lambda k: calls.append(float(k))))
    out = eqx.filter_jit(lambda m, u: m(u, COND, key=jr.key(1)))(rec, fields(jr.key(0), 1)[0])
    jax.block_until_ready(out)
    jax.effects_barrier()
    # one call per refinement step, in order, with the step k as the last cond scalar; the
    # backbone's cond_norm maps it to the public code's k * 1000 / K
    np.testing.assert_allclose(calls, list(range(K + 1)), rtol=1e-6)
    steps = [float(model.backbone.cond_norm(jnp.array([0.8, 0.25, k]))[-1]) for k in range(K + 1)]
    np.testing.assert_allclose(steps, [k * 1000.0 / K for k in range(K + 1)], rtol=1e-6)


class Oracle(eqx.Module):
    """A backbone that knows the answer: y at k = 0, the exact noise (x - y) / sigma_k at k >= 1,
    using the paper's sigma_k = min_std**(k/K) (independent of the refiner's code)."""

    K: int = eqx.field(static=True)
    min_std: float = eqx.field(static=True)

    def __call__(self, x, cond, *, key=None):
        u, est = x[:1], x[1:]
        y = (linear_map(u) - u) / 0.3
        k = jnp.round(cond[-1])
        sigma = self.min_std ** (k / self.K)
        return jnp.where(k == 0, y, (est - y) / sigma)


def test_oracle_backbone_gives_zero_loss_and_exact_prediction():
    K, s = 3, PUBLISHED_MIN_NOISE_STD
    model = PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2,
                       key=jr.key(0), backbone=Oracle(K, s), num_refinement_steps=K)
    u = fields(jr.key(2), 8)
    keys = jr.split(jr.key(3), 8)
    losses = jax.vmap(lambda v, k: model.loss(v, linear_map(v), COND, key=k))(u, keys)
    assert float(jnp.max(losses)) < 1e-8  # exact target at k = 0, exact noise at k >= 1
    assert float(np.max(per_step_losses(model, u, jr.key(3)))) < 1e-8  # every k = 0..3
    path = jax.vmap(lambda v: model.refinement_path(v, COND, key=jr.key(4)))(u)
    err = jnp.max(jnp.abs(path - linear_map(u)[:, None]), axis=(0, 2, 3, 4))
    assert err.shape == (K + 1,) and float(jnp.max(err)) < 1e-5


def per_step_losses(model, u, key, K=3):
    """Mean loss over the batch u at each fixed refinement step k = 0..K."""
    keys = jr.split(key, u.shape[0])
    one = lambda k: jnp.mean(jax.vmap(
        lambda v, kk: model.loss(v, linear_map(v), COND, key=kk, step=k))(u, keys))
    return np.asarray(eqx.filter_jit(lambda m: jnp.stack([one(k) for k in range(K + 1)]))(model))


@pytest.fixture(scope="module")
def trained():
    """200 Adam steps (batch 32, one lax.scan) of the PDE-Refiner loss on the toy problem.

    With the zero first input: this 24-channel toy net learns to ignore an N(0, 1) first input
    slowly (step-0 loss 0.334 -> 0.037 after 200 steps, 0.042 after 400, against 0.011 with
    zeros), which would blur what this test checks, the refinement mechanism. The noise input
    (the default, as the public code) is tested in test_first_step_sees_standard_normal_noise."""
    model = make(3, first_input="zeros")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = optax.adam(3e-3)

    def batch_loss(p, u, key):
        m = eqx.combine(p, static)
        keys = jr.split(key, u.shape[0])
        return jnp.mean(jax.vmap(lambda v, k: m.loss(v, linear_map(v), COND, key=k))(u, keys))

    @jax.jit
    def train(params, key):
        def step(carry, k):
            p, s = carry
            k_data, k_loss = jr.split(k)
            loss, g = jax.value_and_grad(batch_loss)(p, fields(k_data, 32), k_loss)
            upd, s = opt.update(g, s, p)
            return (optax.apply_updates(p, upd), s), loss

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), jr.split(key, 200))
        return params, losses

    new_params, losses = train(params, jr.key(12))
    return model, eqx.combine(new_params, static), np.asarray(losses)


def test_toy_training_loss_decreases_and_refinement_does_not_hurt(trained):
    """Measured (jax 0.10.2 CPU): per-step losses before [0.330, 1.029, 1.032, 1.033] ->
    after [0.0113, 0.366, 0.894, 0.995]; training loss (mean of first/last 20 steps) 0.767 ->
    0.548; relative RMSE of the prediction after k = 0..3: [0.0275, 0.0271, 0.0268, 0.0268],
    i.e. refinement improves the step-0 prediction by ~2.5%."""
    model, trained_model, losses = trained
    assert np.all(np.isfinite(losses))
    assert losses[-20:].mean() < 0.75 * losses[:20].mean(), (losses[:20].mean(), losses[-20:].mean())
    u_eval = fields(jr.key(10), 256)
    before = per_step_losses(model, u_eval, jr.key(11))
    after = per_step_losses(trained_model, u_eval, jr.key(11))
    assert after[0] < 0.05 * before[0], (before, after)  # direct prediction learned (MSE)
    assert after[1] < 0.5 and after[1] < 0.5 * before[1], (before, after)  # denoising at sigma_1
    assert np.all(after < before), (before, after)
    # noise-prediction MSE at the smallest levels stays near 1 (= predicting eps = 0) for a
    # net this small: it would have to know y to within sigma_3 = 6e-4
    paths = eqx.filter_jit(jax.vmap(lambda v: trained_model.refinement_path(v, COND, key=jr.key(5))))(
        u_eval)
    target = linear_map(u_eval)
    rmse = jnp.sqrt(jnp.mean(jnp.square(paths - target[:, None]), axis=(0, 2, 3, 4)))
    rel = np.asarray(rmse / jnp.sqrt(jnp.mean(jnp.square(target))))
    assert rel[0] < 0.05, rel  # the direct prediction (step 0) has learned the map
    assert rel[-1] <= rel[0], rel  # refining K = 3 times does not make it worse


def test_sampling_deterministic_given_key_and_shapes(trained):
    model = trained[1]
    u = fields(jr.key(6), 1)[0]
    f = eqx.filter_jit(lambda m, v, k: m(v, COND, key=k))
    a, b, c = f(model, u, jr.key(7)), f(model, u, jr.key(7)), f(model, u, jr.key(8))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(jnp.max(jnp.abs(a - c))) > 0.0
    # key=None is the documented fixed key jax.random.key(0)
    no_key = eqx.filter_jit(lambda m, v: m(v, COND))(model, u)
    np.testing.assert_array_equal(np.asarray(no_key), np.asarray(f(model, u, jr.key(0))))
    samples = eqx.filter_jit(lambda m, v: m.sample(v, COND, key=jr.key(9), num_samples=4))(model, u)
    assert samples.shape == (4, 1, 1, N)
    for i, k in enumerate(jr.split(jr.key(9), 4)):
        np.testing.assert_allclose(samples[i], f(model, u, k), atol=1e-6)
    assert float(jnp.min(jnp.std(samples, axis=0))) >= 0.0
    assert float(jnp.max(jnp.std(samples, axis=0))) > 0.0  # the noise gives a spread


def test_loss_gradients_finite_and_nonzero():
    model = make(3)
    u = fields(jr.key(13), 1)[0]
    grads = eqx.filter_jit(eqx.filter_grad(
        lambda m: m.loss(u, linear_map(u), COND, key=jr.key(14))))(model)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert sum(float(jnp.sum(jnp.abs(g))) for g in leaves) > 0.0


def test_bad_inputs_raise():
    model = make(3)
    with pytest.raises(ValueError, match="history=1"):
        model(jnp.zeros((2, 1, N)), COND)
    with pytest.raises(ValueError, match="cond"):
        model(jnp.zeros((1, 1, N)), COND[:1])
    with pytest.raises(ValueError, match="u_out"):
        model.loss(jnp.zeros((1, 1, N)), jnp.zeros((2, 1, N)), COND, key=jr.key(0))


def compose_model(name):
    with initialize_config_dir(config_dir=str(CONFIGS / "model"), version_base=None):
        return compose(config_name=name)


def shapes_only(cfg):
    build = lambda key: hydra.utils.instantiate(cfg, spatial_dims=1, history=1, future=1,
                                                channels=1, num_cond=2, key=key)
    return eqx.filter_eval_shape(build, jr.key(0))  # no weights drawn


def n_params(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)
               if isinstance(x, jax.ShapeDtypeStruct | jax.Array) and jnp.issubdtype(x.dtype, jnp.inexact))


def _unet_preset(name):
    ok = importlib.util.find_spec("pdekit.models.unet") and (CONFIGS / "model" / name).exists()
    return pytest.mark.skipif(not ok, reason=f"UNetMod or configs/model/{name} not available")


@pytest.mark.parametrize("preset,backbone_preset,pinned", [
    ("pderefiner", "unetmod1d_64.yaml", 53_924_225),  # = the published PyTorch KS U-Net
    ("pderefiner_small", "unetmod1d_small.yaml", 2_208_449),
])
def test_presets_wrap_unetmod_with_published_settings(preset, backbone_preset, pinned):
    """Built for KS (1 history frame, 1 future, cond (dt, dx)): the backbone is a UNetMod with
    2 input frames and 3 cond scalars; the refiner adds no parameters of its own."""
    if not (importlib.util.find_spec("pdekit.models.unet")
            and (CONFIGS / "model" / backbone_preset).exists()):
        pytest.skip(f"UNetMod or configs/model/{backbone_preset} not available")
    model = shapes_only(compose_model(preset))
    assert type(model.backbone).__name__ == "UNetMod"
    assert (model.num_refinement_steps, model.predict_difference, model.difference_scale) == (
        3, True, 0.3)
    assert math.isclose(model.min_noise_std, math.sqrt(4e-7), rel_tol=1e-9)
    assert n_params(model) == pinned


@pytest.mark.slow  # ~2 CPU-minutes: eager init and compile of a 3 M parameter U-Net
@_unet_preset("unetmod1d_small.yaml")
def test_small_preset_runs_with_unetmod_backbone():
    cfg = compose_model("pderefiner_small")
    model = hydra.utils.instantiate(cfg, spatial_dims=1, history=1, future=1, channels=1,
                                    num_cond=2, key=jr.key(0))
    assert type(model.backbone).__name__ == "UNetMod"
    assert 1_000_000 <= n_params(model) <= 3_500_000
    u = fields(jr.key(15), 1)[0]
    out = eqx.filter_jit(lambda m, v: m(v, COND))(model, u)
    assert out.shape == (1, 1, N) and bool(jnp.all(jnp.isfinite(out)))


class FirstInput(eqx.Module):
    """A backbone that returns its estimate input (x[1:]) unchanged: at k = 0 the refiner's
    output is then exactly the estimate it was given."""

    def __call__(self, x, cond, *, key=None):
        return x[1:]


@pytest.mark.parametrize("first_input", ["noise", "zeros"])
def test_first_step_sees_standard_normal_noise_or_zeros(first_input):
    model = PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2,
                       key=jr.key(0), backbone=FirstInput(), num_refinement_steps=3,
                       first_input=first_input, predict_difference=False)
    u = jnp.zeros((1, 1, 4096))
    first = [model.refinement_path(u, COND, key=jr.key(s))[0] for s in (1, 2)]
    if first_input == "zeros":
        assert all(float(jnp.max(jnp.abs(f))) == 0.0 for f in first)
    else:
        for f in first:  # N(0, 1): mean 0 +- 4/sqrt(4096), std 1 +- 0.05
            assert abs(float(jnp.mean(f))) < 0.0625 and abs(float(jnp.std(f)) - 1.0) < 0.05
        assert float(jnp.max(jnp.abs(first[0] - first[1]))) > 1.0  # fresh noise per key
    # the training loss at k = 0: MSE of the backbone output (its input) against the target y
    y = jnp.ones((1, 1, 4096))
    loss = float(model.loss(u, y, COND, key=jr.key(3), step=0))
    assert (loss == pytest.approx(1.0)) if first_input == "zeros" else 1.6 < loss < 2.4


def test_bf16_parameters_keep_targets_noise_and_loss_in_float32():
    """Under bf16 training only the refiner's parameters are cast: the difference target
    (here 1e-3 of a field of size 3, below bf16's resolution of the field) comes from the
    float32 data and the loss is float32, while every convolution of the backbone runs in
    bf16."""
    backbone = partial(UNetMod, hidden_channels=8, channel_multipliers=(1, 2), num_blocks=1)
    model = PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2,
                       key=jr.key(0), backbone=backbone, num_refinement_steps=2)
    assert uses_float32_data(model)
    u_in = 3.0 + 0.01 * fields(jr.key(1), 1)[0]
    u_out = u_in + 1e-3 * fields(jr.key(2), 1)[0]
    zero = eqx.tree_at(lambda m: m.backbone, model,
                       cast_floating(zero_params(model.backbone), jnp.bfloat16))
    low = eqx.tree_at(lambda m: m.backbone, model, cast_floating(model.backbone, jnp.bfloat16))
    # jitted: eagerly, every small op would compile a program of its own
    loss = jax.jit(lambda z, u, v: z.loss(u, v, COND, key=jr.key(3), step=0))(zero, u_in, u_out)
    # (the zero backbone outputs 0, so the loss is <y^2>)
    a, b = np.asarray(u_in, np.float64), np.asarray(u_out, np.float64)
    y = (b - a[-1][None]) / model.difference_scale if model.predict_difference else b
    assert loss.dtype == jnp.float32
    assert float(loss) == pytest.approx(float(np.mean(y**2)), rel=1e-4)
    # the same target from bf16-rounded data would be off by far more than that tolerance
    a16, b16 = (np.asarray(jnp.asarray(v, jnp.bfloat16), np.float64) for v in (u_in, u_out))
    y16 = (b16 - a16[-1][None]) / model.difference_scale if model.predict_difference else b16
    assert abs(np.mean(y16**2) / np.mean(y**2) - 1.0) > 0.1 or not model.predict_difference

    # tracing only (no compilation): every convolution of the loss and of a prediction is bf16
    for fn in (lambda m, u, v: m.loss(u, v, COND, key=jr.key(3)),
               lambda m, u, v: m.refinement_path(u, COND, key=jr.key(4))):
        text = str(jax.make_jaxpr(fn)(low, u_in, u_out))
        conv_dtypes = re.findall(r":(\w+)\[[^\]]*\] = conv_general_dilated", text)
        assert conv_dtypes and set(conv_dtypes) == {"bf16"}
    out = jax.eval_shape(lambda m, u: m.refinement_path(u, COND, key=jr.key(4)), low, u_in)
    assert out.dtype == jnp.float32
