"""Validation during training: one-step MSE on the validation split and a short rollout.

Both are jitted. The rollout is evaluation's (:func:`pdekit.evaluation.rollout.rollout_batch`,
sample 0 of ``PRNGKey(0)``, the keys of ``pdekit evaluate seed=0``), and its score is
evaluation's Pearson correlation (:func:`pdekit.evaluation.metrics.correlation`) on the
**physical** fields, denormalised with the run's statistics: the ρ(t) that selects the best
checkpoint is the ρ(t) curve of the report on the same trajectories and steps (its mean over
trajectories). A non-finite ρ (a rollout that blew up) makes the mean non-finite, and such a
checkpoint is never chosen as best.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pdekit.evaluation.metrics import correlation
from pdekit.evaluation.rollout import rollout_batch, trajectory_keys
from pdekit.training.objectives import predict

#: seed of the validation rollout's keys, the default ``seed`` of ``pdekit evaluate``
VALIDATION_SEED = 0


def _key():
    """The fixed key of validation predictions, sample 0 of :data:`VALIDATION_SEED` (made
    inside the jitted functions, so that importing this module does not start a JAX backend:
    jax.distributed needs that)."""
    return jax.random.fold_in(jax.random.PRNGKey(VALIDATION_SEED), 0)


class Validator:
    """Jitted validation functions bound to a model's static part, the data layout and the
    run's normalisation ``stats`` (a :class:`pdekit.data.NormStats`)."""

    def __init__(self, static, *, stats, history: int, future: int, steps: int, dp):
        self.static, self.stats = static, stats
        self.history, self.future, self.steps, self.dp = history, future, steps, dp
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
        keys = trajectory_keys(_key(), u.shape[0])
        pred = rollout_batch(model, u[:, : self.history], cond, keys, self.steps,
                             future=self.future)
        ref = u[:, self.history : self.history + self.steps]
        return correlation(self.stats.denormalize(pred), self.stats.denormalize(ref))

    def one_step_loss(self, params, batches) -> float:
        """Mean per-sample MSE over ``batches`` (an iterable of host batches), in normalised
        units (the training loss's)."""
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

    def rollout_rho(self, params, u, cond) -> np.ndarray:
        """Per-trajectory, per-step ρ ``(B, steps)`` of a ``steps``-step rollout from the first
        ``history`` frames of the normalised trajectories ``u``, on physical fields."""
        u, cond = self.dp.put_global((u, cond))
        return np.asarray(self._rollout(params, u, cond))

    def rollout_correlation(self, params, u, cond) -> np.ndarray:
        """Per-step ρ averaged over the trajectories, ``(steps,)``."""
        return self.rollout_rho(params, u, cond).mean(axis=0)
