"""Optimiser (AdamW, linear warm-up then cosine decay, global-norm clipping) and parameter EMA.

The learning rate is applied in the train step, not inside the optax chain: the schedule is
``lr_at(step, horizon)`` where ``horizon`` (the step at which the cosine reaches its end
value) lives in the training state. With a fixed step budget ``horizon = train.steps``; with
a wall-clock budget (``train.time_budget_s``) the trainer moves it to the step the run is
measured to reach within the budget, so every model gets a whole schedule in the same time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def lr_schedule(cfg):
    """``lr_at(step, horizon=cfg.steps)``: linear warm-up from 0 to ``lr`` over
    ``warmup_steps`` (none when 0), then a cosine from ``lr`` down to ``lr * min_lr_ratio`` at
    ``horizon``, constant after it. Works on traced ``step`` and ``horizon``."""
    lr, end, warmup = float(cfg.lr), float(cfg.lr) * float(cfg.min_lr_ratio), int(cfg.warmup_steps)

    def lr_at(step, horizon=None):
        horizon = cfg.steps if horizon is None else horizon
        step = jnp.asarray(step, jnp.float32)
        horizon = jnp.asarray(horizon, jnp.float32)
        warm = jnp.clip(jnp.minimum(jnp.float32(warmup), horizon - 1.0), 0.0, None)
        ramp = jnp.where(warm > 0, lr * step / jnp.maximum(warm, 1.0), lr)
        frac = jnp.clip((step - warm) / jnp.maximum(horizon - warm, 1.0), 0.0, 1.0)
        cosine = end + 0.5 * (lr - end) * (1.0 + jnp.cos(jnp.pi * frac))
        return jnp.where(step < warm, ramp, cosine)

    return lr_at


def make_optimizer(cfg) -> optax.GradientTransformation:
    """AdamW's update direction for the ``train`` section ``cfg``: clipping, Adam moments and
    decoupled weight decay, negated. The train step multiplies it by ``lr_at(step, horizon)``
    (optax's ``adamw`` with that learning rate, term for term)."""
    parts = []
    if cfg.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    parts += [optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2),
              optax.add_decayed_weights(cfg.weight_decay), optax.scale(-1.0)]
    return optax.chain(*parts)


def ema_update(ema, params, step, decay: float, warmup: bool = True):
    """Exponential moving average ``d * ema + (1 - d) * params``.

    With ``warmup`` the decay is ``min(decay, (1+t)/(10+t))`` at step ``t`` (the usual warm-up);
    without it ``d = decay`` from the first step (PDEArena's EMA). ``decay == 0`` makes the
    EMA equal the current parameters.
    """
    t = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t)) if warmup else jnp.float32(decay)
    return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)


def scale_updates(updates, lr):
    """``lr * updates`` leaf by leaf, in each leaf's dtype."""
    return jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
