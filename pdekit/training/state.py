"""The training state pytree and the jitted train step.

State: ``{"params", "opt_state", "ema", "step", "horizon", "key"}``; ``horizon`` is the step
at which the learning-rate schedule ends (``train.steps``, or the step a wall-clock budget
reaches, see :mod:`pdekit.training.optim`). ``key`` is the run's base PRNG key
(raw ``uint32[2]``); the step's key is ``fold_in(key, step)``, so the RNG position is the
step counter and resuming restores it exactly.

Micro-steps (``train.micro_steps = K > 1``): one jitted call runs ``K`` optimiser steps as a
``lax.scan`` over a stacked batch (every leaf has a leading axis ``K``). Each iteration is
the one-step function itself (same key, learning rate, EMA and accumulator updates), so
``K`` only changes how many steps one dispatch holds.

Gradient reduction (``train.grad_reduce_dtype``): ``auto`` leaves the data-parallel
all-reduce to XLA's SPMD partitioner (it follows from the batch sharding). ``float32`` or
``bfloat16`` compute each device's gradient of its batch shard explicitly
(``jax.shard_map`` over the mesh axis ``"data"``) and all-reduce it in that dtype
(``psum``, then back to the parameters' dtype and divided by the number of devices). On one
device there is nothing to reduce and every choice is ``auto``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec

from pdekit.models.base import uses_float32_data
from pdekit.training.model import cast_floating
from pdekit.training.optim import ema_update, scale_updates

#: ``train.grad_reduce_dtype`` choices and the dtype each all-reduces in (``None``: XLA's).
GRAD_REDUCE = {"auto": None, "float32": jnp.float32, "bfloat16": jnp.bfloat16}


def init_state(params, optimizer: optax.GradientTransformation, seed: int, horizon: int) -> dict:
    return {
        "params": params,
        "opt_state": optimizer.init(params),
        "ema": jax.tree.map(jnp.copy, params),
        "step": jnp.zeros((), jnp.int32),
        "horizon": jnp.asarray(horizon, jnp.int32),
        "key": jax.random.PRNGKey(seed + 1),
    }


def init_acc() -> dict:
    """Device-side running sums between two host synchronisations."""
    return {"lr": jnp.zeros((), jnp.float32), "loss": jnp.zeros((), jnp.float32), "gnorm": jnp.zeros((), jnp.float32),
            "n": jnp.zeros((), jnp.int32), "finite": jnp.ones((), jnp.bool_)}


def _explicit_reduce(loss_fn, mesh, dtype):
    """``value_and_grad(loss_fn)`` with the gradient all-reduced by hand in ``dtype``.

    Inside ``shard_map`` each device computes the loss and gradient of its rows of the batch
    (the parameters are made device-varying first, so autodiff leaves the gradient
    per-device instead of reducing it itself); the gradient is cast to ``dtype``, summed over
    ``"data"``, cast back and divided by the device count, and the loss is averaged. Every
    objective is a mean over equally sized shards, so this is the global batch's loss and
    gradient. Each device's random numbers come from ``fold_in(step key, device index)``:
    for objectives that draw per sample (``pushforward``, ``refiner``) the draws differ from
    a one-device run's, with the same distribution.
    """
    n = mesh.devices.size
    data = PartitionSpec("data")

    def local(params, batch, key):
        params = jax.lax.pcast(params, "data", to="varying")
        key = jax.random.fold_in(key, jax.lax.axis_index("data"))
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        grads = jax.tree.map(
            lambda g: jax.lax.psum(g.astype(dtype), "data").astype(g.dtype) / n, grads)
        return jax.lax.pmean(loss, "data"), grads

    return jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(), data, PartitionSpec()),
                         out_specs=(PartitionSpec(), PartitionSpec()))


def make_train_step(static, objective, optimizer, lr_at, *, ema_decay: float, precision: str,
                    replicated, ema_warmup: bool = True, micro_steps: int = 1,
                    grad_reduce: str = "auto", scan_unroll: int = 1):
    """One jitted dispatch ``(state, batch, acc) -> (state, acc)`` with donated state and acc.

    ``micro_steps=1``: one step on ``batch``. ``micro_steps=K``: ``K`` steps, ``batch``'s
    leaves stacked on a leading axis of length ``K`` (step ``i`` of the call uses
    ``batch[..][i]``). ``grad_reduce``: a key of :data:`GRAD_REDUCE` (module docstring).
    ``scan_unroll``: ``lax.scan``'s ``unroll`` (iterations per loop trip; the benchmark's knob,
    not a config key).
    """
    if grad_reduce not in GRAD_REDUCE:
        raise ValueError(f"grad_reduce must be one of {tuple(GRAD_REDUCE)}, got {grad_reduce!r}")
    compute = jnp.bfloat16 if precision == "bf16" else None
    # a model that keeps its data, targets and loss in float32 (PDE-Refiner) gets only its
    # parameters cast: its batches stay float32 (pdekit.models.base.uses_float32_data)
    cast_batch = not uses_float32_data(static)

    def loss_fn(params, batch, key):
        if compute is not None:
            params = cast_floating(params, compute)
            if cast_batch:
                batch = cast_floating(batch, compute)
        return objective(eqx.combine(params, static), batch, key)

    mesh = replicated.mesh
    if GRAD_REDUCE[grad_reduce] is None or mesh.devices.size == 1:
        value_and_grad = jax.value_and_grad(loss_fn)
    else:
        value_and_grad = _explicit_reduce(loss_fn, mesh, GRAD_REDUCE[grad_reduce])

    def step_fn(state, batch, acc):
        key = jax.random.fold_in(state["key"], state["step"])
        loss, grads = value_and_grad(state["params"], batch, key)
        gnorm = jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in jax.tree.leaves(grads)))
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        lr = lr_at(state["step"], state["horizon"])
        params = optax.apply_updates(state["params"], scale_updates(updates, lr))
        ema = ema_update(state["ema"], params, state["step"], ema_decay, ema_warmup)
        new = {"params": params, "opt_state": opt_state, "ema": ema,
               "step": state["step"] + 1, "horizon": state["horizon"], "key": state["key"]}
        ok = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        acc = {"lr": lr.astype(jnp.float32),
               "loss": acc["loss"] + loss.astype(jnp.float32),
               "gnorm": acc["gnorm"] + gnorm.astype(jnp.float32),
               "n": acc["n"] + 1, "finite": acc["finite"] & ok}
        return new, acc

    if micro_steps < 1:
        raise ValueError(f"micro_steps must be >= 1, got {micro_steps}")
    if micro_steps == 1:
        return jax.jit(step_fn, donate_argnums=(0, 2), out_shardings=replicated)

    def dispatch(state, batches, acc):
        def body(carry, batch):
            state, acc = carry
            return step_fn(state, batch, acc), None

        (state, acc), _ = jax.lax.scan(body, (state, acc), batches, length=micro_steps,
                                       unroll=scan_unroll)
        return state, acc

    return jax.jit(dispatch, donate_argnums=(0, 2), out_shardings=replicated)


def all_finite(tree) -> bool:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return bool(all(bool(jnp.all(jnp.isfinite(x))) for x in leaves))
