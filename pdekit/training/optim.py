"""Optimiser (AdamW, linear warm-up then cosine decay, global-norm clipping) and parameter EMA."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def lr_schedule(cfg) -> optax.Schedule:
    """Linear warm-up from 0 to ``lr`` over ``warmup_steps``, then cosine to ``lr*min_lr_ratio``."""
    warm = min(cfg.warmup_steps, cfg.steps - 1) if cfg.steps > 1 else 0
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warm > 0 else cfg.lr,
        peak_value=cfg.lr,
        warmup_steps=warm,
        decay_steps=max(cfg.steps, warm + 1),
        end_value=cfg.lr * cfg.min_lr_ratio,
    )


def make_optimizer(cfg) -> optax.GradientTransformation:
    """``cfg`` is the ``train`` section of the config."""
    parts = []
    if cfg.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    parts.append(optax.adamw(lr_schedule(cfg), b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay))
    return optax.chain(*parts)


def ema_update(ema, params, step, decay: float):
    """Exponential moving average with the usual warm-up ``min(decay, (1+t)/(10+t))``.

    ``decay == 0`` makes the EMA equal the current parameters.
    """
    t = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
    return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)
