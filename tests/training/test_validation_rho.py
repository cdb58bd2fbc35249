"""Validation selects checkpoints on the report's ρ: same rollout, same correlation, physical
fields (docs/training.md, Run directory; docs/evaluation.md, Conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit._mesh import DataParallel
from pdekit.data import NormStats
from pdekit.evaluation.metrics import correlation
from pdekit.evaluation.runner import EvalData, evaluate_model
from pdekit.models import AbstractModel, ModelSpec
from pdekit.training.model import split
from pdekit.training.validation import Validator

B, T, C, N, H, STEPS = 4, 9, 2, 16, 2, 6
SPEC = ModelSpec(spatial_dims=1, history=H, future=1, channels=C, num_cond=1)


class Drift(AbstractModel):
    """Next frame: the last one shifted by one cell, channel 1 damped, plus ``noise`` times
    N(0, 1) when stochastic (in normalised units)."""

    damping: jax.Array
    noise: float = eqx.field(static=True)
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = False

    def __call__(self, u, cond, *, key=None):
        self.check_input(u, cond)
        out = jnp.roll(u[-1], 1, axis=-1) * jnp.stack([jnp.ones(()), self.damping])[:, None]
        return (out + cond[0] * 0.01)[None]


class NoisyDrift(Drift):
    stochastic: ClassVar[bool] = True

    def __call__(self, u, cond, *, key=None):
        return super().__call__(u, cond) + self.noise * jax.random.normal(key, (1, *u.shape[1:]))


def _data():
    """Trajectories of a travelling wave per channel (shift 2 cells a frame); the two channels
    have very different means and spreads, so ρ on normalised and on physical fields differ."""
    rng = np.random.default_rng(0)
    x = np.arange(N) * 2 * np.pi / N
    base = np.stack([np.sin(x + p) + 0.3 * np.cos(3 * x) for p in rng.uniform(0, 6, B)])
    u = np.stack([np.roll(base, 2 * j, axis=-1) for j in range(T)], axis=1)  # (B, T, N)
    u = np.stack([10.0 + 4.0 * u, -1.0 + 0.2 * u[..., ::-1]], axis=2).astype(np.float32)
    stats = NormStats(mean=np.array([10.0, -1.0]), std=np.array([4.0, 0.2]),
                      diff_mean=np.zeros(2), diff_std=np.ones(2))
    u_norm = np.asarray(stats.normalize(u), np.float32)
    cond = rng.uniform(0.5, 1.0, (B, 1)).astype(np.float32)
    data = EvalData(path=Path("mem"), pde="toy", u_norm=u_norm, u=np.asarray(
        stats.denormalize(u_norm), np.float32), cond=cond, dt=np.full(B, 0.5),
        t_start=np.zeros(B), params={}, history=H, future=1, stats=stats)
    return data, stats


@pytest.mark.parametrize("cls", [Drift, NoisyDrift])
def test_validation_rho_is_the_report_rho(cls):
    data, stats = _data()
    model = cls(damping=jnp.float32(0.7), noise=0.3, spec=SPEC)
    params, static = split(model)
    validator = Validator(static, stats=stats, history=H, future=1, steps=STEPS,
                          dp=DataParallel.create())
    per_traj = validator.rollout_rho(params, data.u_norm, data.cond)   # (B, STEPS)
    mean = validator.rollout_correlation(params, data.u_norm, data.cond)

    summary, arrays = evaluate_model(model, data, rollout_steps=STEPS, bootstrap_resamples=20,
                                     time_rollout=False)
    report = np.asarray(correlation(arrays["pred"], arrays["ref"][:, :STEPS]))
    assert per_traj.shape == report.shape == (B, STEPS)
    np.testing.assert_allclose(per_traj, report, rtol=0, atol=2e-6)
    np.testing.assert_allclose(mean, summary["curves"]["rho"]["mean"], rtol=0, atol=2e-6)
    assert summary["stochastic"] is (cls is NoisyDrift)
    # the rollout is not trivial, and ρ on the normalised fields (what validation used to
    # report) is another number: the channels' means and spreads differ
    assert 0.1 < mean[-1] < 0.95
    pred_norm = np.asarray(stats.normalize(arrays["pred"]), np.float32)
    rho_norm = np.asarray(correlation(pred_norm, data.u_norm[:, H:H + STEPS])).mean(axis=0)
    assert np.abs(rho_norm - mean).max() > 0.05
