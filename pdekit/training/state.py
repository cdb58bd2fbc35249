"""The training state pytree and the jitted train step.

State: ``{"params", "opt_state", "ema", "step", "horizon", "key"}``; ``horizon`` is the step
at which the learning-rate schedule ends (``train.steps``, or the step a wall-clock budget
reaches, see :mod:`pdekit.training.optim`). ``key`` is the run's base PRNG key
(raw ``uint32[2]``); the step's key is ``fold_in(key, step)``, so the RNG position is the
step counter and resuming restores it exactly.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from pdekit.training.model import cast_floating
from pdekit.training.optim import ema_update, scale_updates


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


def make_train_step(static, objective, optimizer, lr_at, *, ema_decay: float, precision: str,
                    replicated, ema_warmup: bool = True):
    """One jitted step ``(state, batch, acc) -> (state, acc)`` with donated state and acc."""
    compute = jnp.bfloat16 if precision == "bf16" else None

    def loss_fn(params, batch, key):
        if compute is not None:
            params, batch = cast_floating(params, compute), cast_floating(batch, compute)
        return objective(eqx.combine(params, static), batch, key)

    def step_fn(state, batch, acc):
        key = jax.random.fold_in(state["key"], state["step"])
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch, key)
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

    return jax.jit(step_fn, donate_argnums=(0, 2), out_shardings=replicated)


def all_finite(tree) -> bool:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return bool(all(bool(jnp.all(jnp.isfinite(x))) for x in leaves))
