"""Training objectives: small pure functions ``loss(model, batch, key) -> scalar``.

``batch["u_out"]`` holds ``unroll * future`` frames; the model predicts ``future`` frames per
step (temporal bundling when ``future > 1``). Fields are normalised by the data statistics;
difference prediction is a property of the model (``pdekit.models.wrappers.Residual``), so
every objective compares the model's output with the next frames directly. Losses are
accumulated in float32 whatever the compute dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

Objective = Callable[..., jax.Array]


def predict(model, u_in, cond, key):
    """Apply a single-sample model to a batch, one independent key per sample."""
    keys = jax.random.split(key, u_in.shape[0])
    return jax.vmap(lambda u, c, k: model(u, c, key=k))(u_in, cond, keys)


def mse(pred, target) -> jax.Array:
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def advance(u_in, pred, history: int):
    """Slide the input window: keep the last ``history`` frames of input + prediction."""
    return jnp.concatenate([u_in, pred.astype(u_in.dtype)], axis=1)[:, -history:]


def _blocks(u_out, future: int, unroll: int):
    """(B, unroll*F, ...) -> (unroll, B, F, ...)."""
    b = u_out.shape[0]
    blocks = u_out[:, : unroll * future].reshape(b, unroll, future, *u_out.shape[2:])
    return jnp.moveaxis(blocks, 1, 0)


def one_step(model, batch, key, *, future: int):
    """MSE of one model step against the next ``future`` frames."""
    return mse(predict(model, batch["u_in"], batch["cond"], key), batch["u_out"][:, :future])


def unrolled(model, batch, key, *, future: int, unroll: int):
    """Backpropagate through ``unroll`` autoregressive steps; mean MSE over the steps."""
    u_in, cond = batch["u_in"], batch["cond"]
    history = u_in.shape[1]

    def body(u, xs):
        target, k = xs
        pred = predict(model, u, cond, k)
        return advance(u, pred, history), mse(pred, target)

    keys = jax.random.split(key, unroll)
    _, losses = jax.lax.scan(body, u_in, (_blocks(batch["u_out"], future, unroll), keys))
    return jnp.mean(losses)


def pushforward(model, batch, key, *, future: int, unroll: int):
    """Pushforward trick (Brandstetter et al. 2022).

    Each sample draws ``n`` uniformly from ``0 .. unroll-1``, is rolled ``n`` steps without
    gradient, and the loss is the one-step MSE from there against frames ``n*F .. (n+1)*F``.
    """
    u_in, cond = batch["u_in"], batch["cond"]
    b, history = u_in.shape[0], u_in.shape[1]
    targets = _blocks(batch["u_out"], future, unroll)
    k_n, k_roll, k_last = jax.random.split(key, 3)
    n = jax.random.randint(k_n, (b,), 0, unroll)
    if unroll > 1:
        def body(u, k):
            pred = jax.lax.stop_gradient(predict(model, u, cond, k))
            return advance(u, pred, history), u

        last, inputs = jax.lax.scan(body, u_in, jax.random.split(k_roll, unroll - 1))
        inputs = jnp.concatenate([inputs, last[None]], axis=0)  # input of step 0 .. unroll-1
    else:
        inputs = u_in[None]
    rows = jnp.arange(b)
    start, target = jax.lax.stop_gradient(inputs[n, rows]), targets[n, rows]
    return mse(predict(model, start, cond, k_last), target)


def refiner(model, batch, key, *, future: int):
    """PDE-Refiner denoising objective: the model's own single-sample ``loss`` averaged."""
    u_in, cond = batch["u_in"], batch["cond"]
    keys = jax.random.split(key, u_in.shape[0])
    losses = jax.vmap(lambda a, b, c, k: model.loss(a, b, c, key=k))(
        u_in, batch["u_out"][:, :future], cond, keys)
    return jnp.mean(losses.astype(jnp.float32))


def make_objective(train_cfg, future: int) -> Objective:
    """Pick the objective named by ``train.objective``."""
    name = train_cfg.objective
    if name == "mse":
        return functools.partial(one_step, future=future)
    if name == "unrolled":
        return functools.partial(unrolled, future=future, unroll=train_cfg.unroll)
    if name == "pushforward":
        return functools.partial(pushforward, future=future, unroll=train_cfg.unroll)
    if name == "refiner":
        return functools.partial(refiner, future=future)
    raise ValueError(f"unknown train.objective {name!r}")
