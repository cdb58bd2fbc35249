"""Rollout window sliding and stochastic sampling (the baseline: test_baseline.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.evaluation.rollout import rollout, rollout_samples


class Shift(eqx.Module):
    """future frames: the last input frame rolled by 1, 2, ..., F grid points."""

    future: int = eqx.field(static=True)

    def __call__(self, u, cond, *, key=None):
        return jnp.stack([jnp.roll(u[-1], f + 1, axis=-1) for f in range(self.future)])


class Extrapolate(eqx.Module):
    """u[-1] + (u[-1] - u[-2]) + cond[0]: needs the window in time order."""

    def __call__(self, u, cond, *, key=None):
        return (2 * u[-1] - u[-2] + cond[0])[None]


class Noisy(eqx.Module):
    def __call__(self, u, cond, *, key=None):
        return (u[-1] + 0.1 * jax.random.normal(key, u.shape[1:]))[None]


def test_rollout_slides_window_and_truncates():
    u0 = np.zeros((2, 2, 1, 8), np.float32)
    u0[0, :, 0, 0] = 1.0
    u0[1, :, 0, 3] = 2.0
    out = np.asarray(rollout(Shift(3), u0, np.zeros((2, 1)), 7, future=3))
    assert out.shape == (2, 7, 1, 8)   # 3 calls of 3 frames, truncated to 7
    for j in range(1, 8):
        np.testing.assert_array_equal(out[:, j - 1], np.roll(u0[:, -1], j, axis=-1))


def test_rollout_history_order_and_cond():
    a = np.array([[1.0], [5.0]], np.float32)[:, :, None, None] * np.ones((2, 1, 1, 4), np.float32)
    u0 = np.concatenate([a, a + 1.0], axis=1)      # frames a, a + 1
    cond = np.array([[0.0], [0.5]], np.float32)    # per-trajectory extra slope
    out = np.asarray(rollout(Extrapolate(), u0, cond, 5, future=1))
    # trajectory 0: a + 1 + j; trajectory 1: increments 1.5, 2.0, 2.5, ... (slope grows by 0.5)
    np.testing.assert_allclose(out[0, :, 0, 0], 1.0 + 1.0 + np.arange(1, 6))
    np.testing.assert_allclose(out[1, :, 0, 0], 6.0 + np.cumsum(1.0 + 0.5 * np.arange(1, 6)))


def test_stochastic_samples_differ_and_reproduce():
    u0 = np.zeros((3, 1, 1, 16), np.float32)
    key = jax.random.PRNGKey(3)
    s1 = np.asarray(rollout_samples(Noisy(), u0, np.zeros((3, 0)), 12, future=1, key=key, num_samples=2))
    s2 = np.asarray(rollout_samples(Noisy(), u0, np.zeros((3, 0)), 12, future=1, key=key, num_samples=2))
    assert s1.shape == (2, 3, 12, 1, 16)
    np.testing.assert_array_equal(s1, s2)
    assert np.abs(s1[0] - s1[1]).min(axis=(-2, -1)).max() > 0  # samples and trajectories differ
    assert not np.allclose(s1[0, 0], s1[0, 1])
    # a random walk of 12 steps of std 0.1: per-point std 0.1 * sqrt(12) = 0.346
    assert np.std(s1[:, :, -1]) == pytest.approx(0.346, rel=0.25)
    with pytest.raises(ValueError, match="rollout_steps"):
        rollout(Noisy(), u0, np.zeros((3, 0)), 0, future=1)
