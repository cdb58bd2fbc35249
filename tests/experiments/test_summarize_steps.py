"""The step-study summary's extrapolation recovers a known log-linear ratio."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "ks_pderefiner" / "summarize_steps.py"


@pytest.fixture(scope="module")
def summ():
    spec = importlib.util.spec_from_file_location("summarize_steps", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _points(ratio_at, noise, rng):
    pts = {}
    for s in (1000, 4000, 10000):
        mse = 50.0 + 5.0 * rng.standard_normal(128)
        ref = ratio_at(s) * mse * (1.0 + noise * rng.standard_normal(128))
        for exp, v in (("ks_mse_unet", mse), ("ks_pderefiner", ref)):
            pts[(exp, s, 0)] = {"tau": {"values": v.tolist(), "mean": float(v.mean())},
                                "fingerprint": "f", "baselines": {}}
    return pts


def test_exact_log_linear_ratio_gives_its_crossing(summ):
    # ratio = -0.5 + 0.4 log10(S) reaches 1.3 at S = 10**4.5; proportional values make every
    # bootstrap resample give the same ratios, so the interval collapses onto the crossing
    ex = summ.extrapolate(_points(lambda s: -0.5 + 0.4 * np.log10(s), 0.0,
                                  np.random.default_rng(0)), resamples=50)
    assert ex["slope_per_decade"] == pytest.approx(0.4, rel=1e-9)
    assert ex["crossing_steps"] == pytest.approx(10 ** 4.5, rel=1e-6)
    assert ex["crossing_lo"] == pytest.approx(10 ** 4.5, rel=1e-6)
    assert ex["crossing_hi"] == pytest.approx(10 ** 4.5, rel=1e-6)


def test_noisy_ratio_interval_brackets_and_flat_ratio_never_crosses(summ):
    rng = np.random.default_rng(1)
    ex = summ.extrapolate(_points(lambda s: -0.5 + 0.4 * np.log10(s), 0.2, rng), resamples=200)
    assert ex["crossing_lo"] < ex["crossing_steps"] < ex["crossing_hi"]
    assert ex["crossing_lo"] > 10 ** 4.0 and ex["crossing_hi"] < 10 ** 5.2
    flat = summ.extrapolate(_points(lambda s: 1.0 - 0.05 * np.log10(s), 0.0, rng), resamples=20)
    assert flat["crossing_steps"] is None and flat["nonpositive_slopes"] == 20
    assert "not reached" in summ.extrapolation_md(flat)
