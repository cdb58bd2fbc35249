"""Parseval, shells, band errors and the bootstrap interval."""

import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.evaluation import spectra as SP
from pdekit.evaluation.stats import bootstrap_ci, summarize


@pytest.mark.parametrize("n", [32, 33])
def test_parseval_1d(n):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(4, 2, n)).astype(np.float32) + 0.3
    e = np.asarray(SP.energy_spectrum_1d(jnp.asarray(u)))
    assert e.shape == (4, n // 2 + 1)
    np.testing.assert_allclose(e.sum(-1), (u**2).mean(axis=(-2, -1)), rtol=1e-5)


def test_spectrum_1d_single_mode():
    n = 64
    x = 2 * np.pi * np.arange(n) / n
    u = (2.0 * np.cos(5 * x) + 0.5)[None].astype(np.float32)   # mean(u^2) = 2 + 0.25
    e = np.asarray(SP.energy_spectrum_1d(jnp.asarray(u)))
    assert e[0] == pytest.approx(0.25, rel=1e-5)
    assert e[5] == pytest.approx(2.0, rel=1e-5)
    assert np.sum(np.delete(e, [0, 5])) < 1e-10


def test_parseval_2d_and_shells():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(3, 2, 16, 16)).astype(np.float32)
    e = np.asarray(SP.energy_spectrum_2d(jnp.asarray(u)))
    assert e.shape == (3, SP.num_shells(16, 16)) == (3, 12)   # floor(8 sqrt 2 + 1/2) + 1
    np.testing.assert_allclose(e.sum(-1), (u**2).mean(axis=(-3, -2, -1)), rtol=1e-5)
    # sin(3x) cos(4y): modes (+-3, +-4), |m| = 5, energy mean(u^2) = 1/4, all in shell 5
    x = 2 * np.pi * np.arange(16) / 16
    v = (np.sin(3 * x)[:, None] * np.cos(4 * x)[None, :])[None, None].astype(np.float32)
    ev = np.asarray(SP.energy_spectrum_2d(jnp.asarray(v)))[0]
    assert ev[5] == pytest.approx(0.25, rel=1e-5)
    assert np.sum(np.delete(ev, 5)) < 1e-10
    # (1, 1): |m| = 1.414 lies in shell 1 ([0.5, 1.5)); (2, 2): 2.83 in shell 3
    w = (np.sin(x)[:, None] * np.sin(x)[None, :] + np.cos(2 * x)[:, None] * np.cos(2 * x)[None, :])
    ew = np.asarray(SP.energy_spectrum_2d(jnp.asarray(w[None].astype(np.float32))))
    assert ew[1] == pytest.approx(0.25, rel=1e-5) and ew[3] == pytest.approx(0.25, rel=1e-5)


def test_band_errors_and_log_distance():
    kmax = 9                                   # bands k = 1-3, 4-6, 7-9
    assert SP.band_slices(kmax) == {"low": slice(1, 4), "mid": slice(4, 7), "high": slice(7, 10)}
    e_ref = jnp.ones(10)
    e_pred = e_ref.at[8].set(4.0).at[2].set(0.5)
    err = SP.band_errors(e_pred, e_ref, kmax)
    assert float(err["low"]) == pytest.approx(0.5 / 3)
    assert float(err["mid"]) == 0.0
    assert float(err["high"]) == pytest.approx(3.0 / 3)
    d = SP.log_spectrum_distance(e_pred, e_ref, kmax)
    assert float(d) == pytest.approx((np.log10(4.0) + np.log10(2.0)) / 9, rel=1e-6)


def test_long_horizon_stats_identical_climate():
    rng = np.random.default_rng(3)
    ref = jnp.asarray(rng.normal(size=(2, 20, 1, 16)), jnp.float32)
    out = SP.long_horizon_stats(ref[:, ::-1] * 2.0, ref, 1)
    np.testing.assert_allclose(out["var_ratio"], 4.0, rtol=1e-5)
    np.testing.assert_allclose(out["log_spectrum_distance"], np.log10(4.0), rtol=1e-5)
    np.testing.assert_allclose(out["band_low"], 3.0, rtol=1e-5)


def test_bootstrap_contains_mean_and_shrinks():
    rng = np.random.default_rng(4)
    widths = []
    for n in (10, 1000):
        v = rng.normal(2.0, 1.0, size=n)
        mean, lo, hi = bootstrap_ci(v, seed=0)
        assert float(mean) == pytest.approx(float(np.mean(v)), rel=1e-5)
        assert float(lo) < float(mean) < float(hi)
        widths.append(float(hi - lo))
    # width ~ 2 * 1.96 / sqrt(n): 1.24 and 0.124
    assert 0.6 < widths[0] < 2.0
    assert 0.09 < widths[1] < 0.16
    assert widths[1] < widths[0] / 5


def test_summarize_skips_nonfinite_and_is_deterministic():
    v = np.array([1.0, 2.0, 3.0, np.inf])
    s = summarize(v)
    assert s["mean"] == pytest.approx(2.0) and s["median"] == pytest.approx(2.0)
    assert s["n"] == 4 and s["n_nonfinite"] == 1
    assert 1.0 <= s["lo"] <= 2.0 <= s["hi"] <= 3.0
    assert summarize(v) == s
    per_step = summarize(np.array([[1.0, 5.0], [3.0, 7.0]]))
    assert per_step["mean"] == [2.0, 6.0]


def test_populated_kmax_stops_at_dealiased_modes():
    n = 96
    x = np.arange(n) / n * 2 * np.pi
    rng = np.random.default_rng(0)
    u = sum(rng.normal() * np.cos(k * x + rng.uniform(0, 6)) for k in range(1, 33))  # k <= N/3 = 32
    u = (u + 1e-9 * rng.normal(size=n)).astype(np.float64)  # round-off level noise above
    e = SP.energy_spectrum(jnp.asarray(u[None, None]), 1)
    assert SP.populated_kmax(e, SP.resolved_kmax((n,))) == 32
    assert SP.populated_kmax(e, 20) == 20
