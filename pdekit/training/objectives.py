"""Training objectives: small pure functions ``loss(model, batch, key) -> scalar``.

``batch["u_out"]`` holds ``unroll * future`` frames; the model predicts ``future`` frames per
step (temporal bundling when ``future > 1``). Fields are normalised by the data statistics;
difference prediction is a property of the model (``pdekit.models.wrappers.Residual``), so
every objective compares the model's output with the next frames directly. Losses are
accumulated in float32 whatever the compute dtype. The unrolled and pushforward objectives
roll out with :func:`pdekit.evaluation.rollout.rollout_batch`, the same window advance as
validation and evaluation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from pdekit.evaluation.rollout import rollout_batch, trajectory_keys
from pdekit.models.base import AbstractStochasticModel

Objective = Callable[..., jax.Array]


def predict(model, u_in, cond, key):
    """One call of a single-sample model on a batch, one independent key per sample."""
    keys = trajectory_keys(key, u_in.shape[0])
    return jax.vmap(lambda u, c, k: model(u, c, key=k))(u_in, cond, keys)


def mse(pred, target) -> jax.Array:
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def _blocks(u_out, future: int, unroll: int):
    """(B, unroll*F, ...) -> (unroll, B, F, ...)."""
    b = u_out.shape[0]
    blocks = u_out[:, : unroll * future].reshape(b, unroll, future, *u_out.shape[2:])
    return jnp.moveaxis(blocks, 1, 0)


def one_step(model, batch, key, *, future: int):
    """MSE of one model step against the next ``future`` frames."""
    return mse(predict(model, batch["u_in"], batch["cond"], key), batch["u_out"][:, :future])


def unrolled(model, batch, key, *, future: int, unroll: int):
    """Backpropagate through ``unroll`` autoregressive steps; mean MSE over the steps (all
    steps have ``future`` frames, so this is the MSE over the ``unroll * future`` frames)."""
    u_in, cond = batch["u_in"], batch["cond"]
    n = unroll * future
    pred = rollout_batch(model, u_in, cond, trajectory_keys(key, u_in.shape[0]), n,
                         future=future)
    return mse(pred, batch["u_out"][:, :n])


def pushforward(model, batch, key, *, future: int, unroll: int):
    """Pushforward trick (Brandstetter et al. 2022).

    Each sample draws ``n`` uniformly from ``0 .. unroll-1``, is rolled ``n`` steps without
    gradient, and the loss is the one-step MSE from there against frames ``n*F .. (n+1)*F``.
    The window after ``n`` steps is frames ``n*F .. n*F + H`` of ``u_in ++ rollout``.
    """
    u_in, cond = batch["u_in"], batch["cond"]
    b, history = u_in.shape[0], u_in.shape[1]
    targets = _blocks(batch["u_out"], future, unroll)
    k_n, k_roll, k_last = jax.random.split(key, 3)
    n = jax.random.randint(k_n, (b,), 0, unroll)
    if unroll > 1:
        params, static = eqx.partition(model, eqx.is_inexact_array)
        frozen = eqx.combine(jax.lax.stop_gradient(params), static)  # no tangents in the scan
        ahead = rollout_batch(frozen, u_in, cond, trajectory_keys(k_roll, b),
                              (unroll - 1) * future, future=future)
        frames = jnp.concatenate([u_in, ahead.astype(u_in.dtype)], axis=1)
        start = jax.vmap(lambda f, i: jax.lax.dynamic_slice_in_dim(f, i * future, history))(
            frames, n)
    else:
        start = u_in
    target = targets[n, jnp.arange(b)]
    return mse(predict(model, start, cond, k_last), target)


def refiner(model, batch, key, *, future: int):
    """PDE-Refiner denoising objective: the model's own single-sample ``loss`` averaged."""
    u_in, cond = batch["u_in"], batch["cond"]
    keys = jax.random.split(key, u_in.shape[0])
    losses = jax.vmap(lambda a, b, c, k: model.loss(a, b, c, key=k))(
        u_in, batch["u_out"][:, :future], cond, keys)
    return jnp.mean(losses.astype(jnp.float32))


def check_objective(name: str, model, what: str) -> None:
    """Refuse an objective the model cannot be trained with (``model`` may be a skeleton):
    ``refiner`` trains the model's own loss, so it needs a
    :class:`pdekit.models.AbstractStochasticModel`."""
    if name == "refiner" and not isinstance(model, AbstractStochasticModel):
        raise ValueError(f"train.objective=refiner trains the model's own loss; {what} is "
                         f"{type(model).__name__}, not a stochastic model with a loss "
                         "(pdekit.models.AbstractStochasticModel, e.g. PDERefiner); use "
                         "train.objective=mse")


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
