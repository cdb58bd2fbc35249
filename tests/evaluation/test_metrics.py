"""Hand-computed checks of the rollout metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.evaluation import metrics as M


def _phase_drift(n=64, k=3, omega=0.1, steps=20):
    x = 2 * np.pi * np.arange(n) / n
    t = np.arange(1, steps + 1)
    ref = np.broadcast_to(np.sin(k * x), (steps, n))
    pred = np.sin(k * x[None, :] + omega * t[:, None])
    return pred[None, :, None].astype(np.float32), ref[None, :, None].astype(np.float32), t


def test_identical_fields_rho_one_and_tau_censored():
    rng = np.random.default_rng(0)
    ref = jnp.asarray(rng.normal(size=(3, 12, 1, 32)), jnp.float32)
    rho = M.correlation(ref, ref)
    np.testing.assert_allclose(rho, 1.0, atol=1e-6)
    np.testing.assert_allclose(M.nrmse(ref, ref), 0.0, atol=0)
    dt = jnp.array([0.5, 0.8, 1.0])
    for c in (0.8, 0.9, 0.95):
        tau, censored, steps = M.first_crossing_time(rho, c, dt)
        np.testing.assert_array_equal(censored, [True, True, True])
        np.testing.assert_array_equal(steps, [12, 12, 12])
        np.testing.assert_allclose(tau, [6.0, 9.6, 12.0], rtol=1e-6)


def test_phase_drift_rho_is_cos_omega_t():
    pred, ref, t = _phase_drift()
    rho = np.asarray(M.correlation(pred, ref))[0]
    np.testing.assert_allclose(rho, np.cos(0.1 * t), atol=1e-6)
    # nRMSE of a phase shift: ||sin(a+p) - sin(a)|| / ||sin a|| = 2 |sin(p/2)|
    np.testing.assert_allclose(np.asarray(M.nrmse(pred, ref))[0], 2 * np.abs(np.sin(0.05 * t)), atol=1e-5)
    # cos(0.1 t) < 0.9 first at t = 5 (cos 0.5 = 0.8776; cos 0.4 = 0.9211)
    tau, censored, steps = M.first_crossing_time(jnp.asarray(rho[None]), 0.9, 0.25)
    assert int(steps[0]) == 5 and not bool(censored[0])
    assert float(tau[0]) == pytest.approx(1.25)


def test_first_crossing_not_count():
    rho = jnp.array([[0.99, 0.97, 0.85, 0.95, 0.96, 0.92, 0.5, 0.4]])
    tau, censored, steps = M.first_crossing_time(rho, 0.9, 0.5)
    assert int(steps[0]) == 3          # first dip, at step 3
    assert float(tau[0]) == 1.5
    assert not bool(censored[0])
    # a count of steps above 0.9 would give 5 steps = 2.5 time units
    assert float(M.pdearena_time(rho, 0.9, 0.5)) == 2.5
    # a non-finite rho counts as a crossing
    tau, censored, steps = M.first_crossing_time(jnp.array([[0.99, jnp.nan, 0.99]]), 0.8, 1.0)
    assert int(steps[0]) == 2 and not bool(censored[0])


def test_pdearena_convention_hand_count():
    rho = jnp.array([
        [1.0, 0.9, 0.8, 0.7, 0.95],
        [1.0, 0.8, 0.9, 0.9, 0.95],
        [0.7, 0.9, 0.8, 0.8, 0.55],
    ])
    # batch means: 0.9, 0.8667, 0.8333, 0.8, 0.8167
    assert float(M.pdearena_time(rho, 0.8, 0.2)) == pytest.approx(0.8)   # steps 1,2,3,5
    assert float(M.pdearena_time(rho, 0.85, 0.2)) == pytest.approx(0.4)  # steps 1,2
    assert float(M.pdearena_time(rho, 0.95, 0.2)) == 0.0
    # per-trajectory first crossings at c = 0.85: steps 3, 2, 1
    _, _, steps = M.first_crossing_time(rho, 0.85, 0.2)
    np.testing.assert_array_equal(steps, [3, 2, 1])


def test_blowup_inf_and_growth():
    b, t = 3, 10
    pred = np.ones((b, t, 1, 8), np.float32)
    pred[0, 6, 0, 3] = np.inf        # step 7
    pred[1, 4:] *= 11.0              # ||u|| = 11 sqrt(8) > 10 * sqrt(8) from step 5
    pred[2, 4:] *= 9.99              # stays below the threshold: stable
    ref_max = jnp.full((b,), np.sqrt(8.0), jnp.float32)
    time, stable, steps = M.blowup(jnp.asarray(pred), ref_max, jnp.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(steps, [7, 5, 10])
    np.testing.assert_array_equal(stable, [False, False, True])
    np.testing.assert_allclose(time, [0.7, 1.0, 3.0], rtol=1e-6)
    pred[2, 8, 0, 0] = np.nan        # NaN at step 9
    _, stable, steps = M.blowup(jnp.asarray(pred), ref_max, 1.0)
    assert int(steps[2]) == 9 and not bool(stable[2])


def test_spread_error_hand_case():
    ref = jnp.zeros((2, 3, 1, 4))
    base = jnp.arange(1.0, 4.0)[None, :, None, None] * jnp.ones((2, 3, 1, 4))
    base = base * jnp.array([1.0, 2.0])[:, None, None, None]
    samples = jnp.stack([base, -base, base + 1.0, -base + 1.0])  # mean 0.5, std dev grows with base
    out = M.spread_error(samples, ref)
    # var (ddof=1) of {a, -a, a+1, 1-a} (mean 1/2) = (4 a^2 + 1) / 3
    a = np.array([[1, 2, 3], [2, 4, 6]], float)
    np.testing.assert_allclose(out["spread"], np.sqrt((4 * a**2 + 1) / 3), rtol=1e-6)
    np.testing.assert_allclose(out["error"], 0.5, rtol=1e-6)
    # spread grows over steps while the error is constant: zero-variance error gives corr 0
    np.testing.assert_allclose(out["corr_time"], 0.0)
    single = M.spread_error(samples[:1], ref)
    np.testing.assert_allclose(single["spread"], 0.0)
    # shifting every sample by the base: error = a + 1/2, spread = sqrt((4 a^2 + 1) / 3)
    shifted = M.spread_error(samples + base[None], ref)
    np.testing.assert_allclose(shifted["error"], a + 0.5, rtol=1e-6)
    np.testing.assert_allclose(shifted["spread"], np.sqrt((4 * a**2 + 1) / 3), rtol=1e-6)
    expect = [np.corrcoef(np.sqrt((4 * r**2 + 1) / 3), r + 0.5)[0, 1] for r in a]
    np.testing.assert_allclose(shifted["corr_time"], expect, atol=1e-6)
    assert expect[0] == pytest.approx(0.99994, abs=1e-5)
    assert jax.numpy.all(jnp.isfinite(out["corr_traj"]))
