"""Validation during training: one-step MSE on the validation split and a short rollout.

Both are jitted; the rollout is a ``lax.scan`` over model steps and reports the Pearson
correlation between prediction and reference per predicted frame (centred, over channels
and space), averaged over the validation trajectories.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pdekit.training.objectives import advance, predict


def _key():
    """The fixed key of validation predictions (made inside the jitted functions, so that
    importing this module does not start a JAX backend: jax.distributed needs that)."""
    return jax.random.PRNGKey(0)


def pearson(pred, ref):
    """Correlation over every axis after the first two: (n, T, ...) -> (n, T)."""
    axes = tuple(range(2, pred.ndim))
    p = pred - pred.mean(axis=axes, keepdims=True)
    r = ref - ref.mean(axis=axes, keepdims=True)
    num = (p * r).sum(axis=axes)
    den = jnp.sqrt((p * p).sum(axis=axes) * (r * r).sum(axis=axes))
    return num / jnp.maximum(den, 1e-12)


class Validator:
    """Jitted validation functions bound to a model's static part and the data layout."""

    def __init__(self, static, *, history: int, future: int, steps: int, dp):
        self.static, self.history, self.future, self.steps, self.dp = static, history, future, steps, dp
        self._one_step = jax.jit(self._one_step_impl)
        self._rollout = jax.jit(self._rollout_impl)

    def _one_step_impl(self, params, batch, mask):
        model = eqx.combine(params, self.static)
        pred = predict(model, batch["u_in"], batch["cond"], _key()).astype(jnp.float32)
        err = jnp.square(pred - batch["u_out"][:, : self.future])
        per = err.reshape(err.shape[0], -1).mean(axis=1)
        return jnp.sum(per * mask), jnp.sum(mask)

    def _rollout_impl(self, params, u, cond):
        model = eqx.combine(params, self.static)

        def body(state, _):
            pred = predict(model, state, cond, _key())
            return advance(state, pred, self.history), pred.astype(jnp.float32)

        _, preds = jax.lax.scan(body, u[:, : self.history], None, length=self.steps)
        preds = jnp.moveaxis(preds, 0, 1)  # (n, steps, F, C, *S)
        preds = preds.reshape(preds.shape[0], -1, *preds.shape[3:])
        ref = u[:, self.history : self.history + preds.shape[1]]
        return pearson(preds, ref).mean(axis=0)

    def one_step_loss(self, params, batches) -> float:
        """Mean per-sample MSE over ``batches`` (an iterable of host batches)."""
        total, count = 0.0, 0.0
        size = None
        for batch in batches:
            b = batch["u_in"].shape[0]
            size = size or b + (-b) % self.dp.num_devices  # one shape: the first batch's
            pad = size - b
            mask = np.concatenate([np.ones(b, np.float32), np.zeros(pad, np.float32)])
            if pad:
                batch = {k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in batch.items()}
            batch = self.dp.put_global(batch, self.dp.batch)
            s, c = self._one_step(params, batch, self.dp.put_global(mask, self.dp.batch))
            total, count = total + float(s), count + float(c)
        return total / max(count, 1.0)

    def rollout_correlation(self, params, u, cond) -> np.ndarray:
        """Per-frame mean correlation of a ``steps``-step rollout from the first frames."""
        u, cond = self.dp.put_global((u, cond))
        return np.asarray(self._rollout(params, u, cond))
