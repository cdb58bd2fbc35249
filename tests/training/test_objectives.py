"""Objectives and optimiser pieces against hand-computed numbers."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from omegaconf import OmegaConf

from pdekit.models import FNO, ModelSpec, PDERefiner, UNetMod
from pdekit.training import objectives as obj
from pdekit.training.optim import ema_update, lr_schedule, make_optimizer, scale_updates


class Gain(eqx.Module):
    """u -> w * u[-1] repeated over `future` frames (a one-parameter model)."""

    w: jax.Array
    future: int = eqx.field(static=True)

    def __call__(self, u, cond, *, key=None):
        return jnp.repeat(self.w * u[-1:], self.future, axis=0)


def _batch(b=3, h=2, f_total=4, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return {"u_in": rng.normal(size=(b, h, 1, n)).astype(np.float32),
            "u_out": rng.normal(size=(b, f_total, 1, n)).astype(np.float32),
            "cond": rng.normal(size=(b, 2)).astype(np.float32)}


KEY = jax.random.PRNGKey(3)


def test_one_step_is_mse_of_next_frames():
    batch, m = _batch(), Gain(jnp.float32(0.5), 2)
    want = np.mean((0.5 * batch["u_in"][:, -1:] - batch["u_out"][:, :2]) ** 2)
    assert float(obj.one_step(m, batch, KEY, future=2)) == pytest.approx(want, rel=1e-6)


def test_unrolled_feeds_predictions_back():
    batch, m = _batch(), Gain(jnp.float32(0.9), 1)
    u = batch["u_in"][:, -1:]
    losses = []
    for k in range(3):  # history 2 -> the last frame is the previous prediction
        u = 0.9 * u
        losses.append(np.mean((u - batch["u_out"][:, k : k + 1]) ** 2))
    got = obj.unrolled(m, batch, KEY, future=1, unroll=3)
    assert float(got) == pytest.approx(np.mean(losses), rel=1e-5)


def test_pushforward_gradient_skips_the_unrolled_steps():
    batch, w = _batch(b=64, f_total=2), 0.8
    n = np.asarray(jax.random.randint(jax.random.split(KEY, 3)[0], (64,), 0, 2))
    x = batch["u_in"][:, -1, 0] * np.where(n == 1, w, 1.0)[:, None]  # no-grad start
    y = batch["u_out"][np.arange(64), n, 0]
    loss = lambda p: obj.pushforward(Gain(p, 1), batch, KEY, future=1, unroll=2)
    val, grad = jax.value_and_grad(loss)(jnp.float32(w))
    assert float(val) == pytest.approx(np.mean((w * x - y) ** 2), rel=1e-5)
    assert float(grad) == pytest.approx(np.mean(2 * (w * x - y) * x), rel=1e-4)
    assert 10 < n.sum() < 54  # both branches drawn


def test_refiner_objective_averages_model_loss():
    class WithLoss(eqx.Module):
        def loss(self, u_in, u_out, cond, *, key):
            return jnp.sum(u_out) + 0.0 * jax.random.normal(key)

    batch = _batch(f_total=3)
    got = obj.refiner(WithLoss(), batch, KEY, future=2)
    assert float(got) == pytest.approx(batch["u_out"][:, :2].sum(axis=(1, 2, 3)).mean(), rel=1e-5)


def test_warmup_cosine_schedule_values():
    t = OmegaConf.create({"steps": 110, "warmup_steps": 10, "lr": 1e-3, "min_lr_ratio": 0.1})
    s = lr_schedule(t)
    assert float(s(0)) == 0.0
    assert float(s(5)) == pytest.approx(5e-4, rel=1e-6)
    assert float(s(10)) == pytest.approx(1e-3, rel=1e-6)
    assert float(s(60)) == pytest.approx(0.5 * (1e-3 + 1e-4), rel=1e-5)  # half-way down
    assert float(s(110)) == pytest.approx(1e-4, rel=1e-6)


def test_clipping_bounds_the_first_adam_step_and_ema_formula():
    t = OmegaConf.create({"steps": 10, "warmup_steps": 0, "lr": 0.1, "min_lr_ratio": 0.0,
                          "grad_clip": 1.0, "b1": 0.9, "b2": 0.999, "weight_decay": 0.0})
    opt = make_optimizer(t)
    p = {"a": jnp.zeros(4)}
    g = {"a": jnp.array([30.0, 40.0, 0.0, 0.0])}  # norm 50 -> clipped to 1
    clipped = optax.clip_by_global_norm(1.0).update(g, None)[0]["a"]
    np.testing.assert_allclose(clipped, [0.6, 0.8, 0, 0], rtol=1e-6)
    upd, _ = opt.update(g, opt.init(p), p)
    upd = scale_updates(upd, lr_schedule(t)(0))
    np.testing.assert_allclose(upd["a"], [-0.1, -0.1, 0, 0], rtol=1e-4)  # Adam: lr*sign
    ema = ema_update({"a": jnp.ones(2)}, {"a": jnp.zeros(2)}, step=1000, decay=0.99)
    np.testing.assert_allclose(ema["a"], 0.99, rtol=1e-6)
    ema = ema_update({"a": jnp.ones(2)}, {"a": jnp.zeros(2)}, step=0, decay=0.99)
    np.testing.assert_allclose(ema["a"], 0.1, rtol=1e-6)  # warm-up: (1+0)/(10+0)


def test_unrolled_bundles_and_slides_a_longer_window():
    """future 2, history 3: each step sees the last 3 of (window ++ predictions)."""
    batch, m = _batch(h=3, f_total=4), Gain(jnp.float32(0.9), 2)
    window, losses = list(np.moveaxis(batch["u_in"], 1, 0)), []
    for k in range(2):
        pred = [0.9 * window[-1]] * 2
        losses.append(np.mean((np.stack(pred, 1) - batch["u_out"][:, 2 * k : 2 * k + 2]) ** 2))
        window = (window + pred)[-3:]
    got = obj.unrolled(m, batch, KEY, future=2, unroll=2)
    assert float(got) == pytest.approx(np.mean(losses), rel=1e-5)


def test_refiner_objective_needs_a_stochastic_model_with_a_loss():
    spec = ModelSpec(spatial_dims=1, history=1, future=1, channels=1, num_cond=2)
    fno = eqx.filter_eval_shape(lambda k: FNO.from_spec(spec, key=k, width=4, modes=2), KEY)
    with pytest.raises(ValueError, match="objective=refiner.*FNO.*AbstractStochasticModel"):
        obj.check_objective("refiner", fno, "pdekit.models.FNO")
    obj.check_objective("mse", fno, "pdekit.models.FNO")
    backbone = functools.partial(UNetMod, hidden_channels=8, channel_multipliers=(1,))
    refiner = eqx.filter_eval_shape(
        lambda k: PDERefiner.from_spec(spec, key=k, backbone=backbone), KEY)
    obj.check_objective("refiner", refiner, "pdekit.models.PDERefiner")


class _Echo(eqx.Module):
    """The refiner's one-parameter backbone for the precision test: w * (its last frame)."""

    w: jax.Array

    def __call__(self, x, cond, *, key=None):
        return self.w * x[-1:]


@pytest.mark.parametrize("refiner", [True, False])
def test_bf16_step_casts_the_batch_unless_the_model_keeps_float32_data(refiner):
    """train.precision=bf16: parameters are cast either way; the batch is cast for an MSE model
    and left float32 for PDE-Refiner (`float32_data`), whose targets and loss need it."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from pdekit.training.state import init_acc, init_state, make_train_step

    key = jax.random.key(0)
    model = (PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2, key=key,
                        backbone=_Echo(jnp.ones(()))) if refiner else Gain(jnp.ones(()), 1))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    seen = {}

    def objective(m, batch, k):
        seen["u_in"] = batch["u_in"].dtype
        seen["w"] = jax.tree.leaves(eqx.filter(m, eqx.is_inexact_array))[0].dtype
        return jnp.mean(jnp.square(m(batch["u_in"][0], batch["cond"][0], key=k).astype(jnp.float32)))

    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    opt = optax.adam(1e-3)
    step = make_train_step(static, objective, opt, lambda s, h: jnp.float32(1e-3),
                           ema_decay=0.9, precision="bf16",
                           replicated=NamedSharding(mesh, PartitionSpec()))
    batch = {"u_in": jnp.ones((2, 1, 1, 8)), "u_out": jnp.ones((2, 1, 1, 8)),
             "cond": jnp.ones((2, 2))}
    step(init_state(params, opt, 0, 10), batch, init_acc())
    assert seen["w"] == jnp.bfloat16
    assert seen["u_in"] == (jnp.float32 if refiner else jnp.bfloat16)
