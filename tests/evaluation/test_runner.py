"""evaluate_model on hand-built data: a perfect model, a lagging model, a stochastic one."""

from pathlib import Path
from typing import ClassVar

import equinox as eqx
import numpy as np
import pytest
from test_rollout_baseline import Noisy, Shift

from pdekit.data import NormStats
from pdekit.evaluation.runner import EvalData, evaluate_model
from pdekit.models import AbstractModel, ModelSpec, is_stochastic


def _data(frames=13, n=16, b=4, history=1, scale=2.0, shift=1):
    rng = np.random.default_rng(0)
    u0 = rng.normal(size=(b, 1, n)).astype(np.float32)
    u = np.stack([np.roll(u0, shift * j, axis=-1) for j in range(frames)], axis=1)  # (b, T, 1, n)
    stats = NormStats(mean=np.zeros(1), std=np.full(1, scale), diff_mean=np.zeros(1),
                      diff_std=np.ones(1))
    return EvalData(path=Path("mem"), pde="ks", u_norm=u / scale, u=u, cond=np.zeros((b, 0), np.float32),
                    dt=np.full(b, 0.25), t_start=np.zeros(b), params={}, history=history,
                    future=1, stats=stats)


def test_perfect_model_censored_and_long_horizon():
    data = _data()
    s, arrays = evaluate_model(Shift(1), data, rollout_steps=20, steps=[1, 12], bootstrap_resamples=200,
                               time_rollout=False)
    assert s["compared_steps"] == 12 and s["rollout_steps"] == 20
    for c in ("0.8", "0.9", "0.95"):
        assert s["tau"][c]["censored"] == 4
        assert s["tau"][c]["mean"] == pytest.approx(12 * 0.25)
        assert s["tau"][c]["pdearena"] == pytest.approx(12 * 0.25)
    assert s["at_steps"]["12"]["time"] == pytest.approx(3.0)
    assert s["at_steps"]["12"]["rho"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert s["at_steps"]["1"]["nrmse"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert s["stability"]["stable_fraction"] == 1.0
    assert s["spectral"]["low"]["mean"] == pytest.approx(0.0, abs=1e-5)
    lg = s["long_horizon"]
    assert lg["steps"] == 8
    assert lg["var_ratio"]["mean"] == pytest.approx(1.0, rel=1e-5)   # a roll keeps the variance
    assert lg["log_spectrum_distance"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert arrays["pred"].shape == (4, 20, 1, 16)
    assert not s["stochastic"] and s["num_samples"] == 1


def test_lagging_model_crosses_at_known_step():
    # the model shifts by 2 points per step while the truth shifts by 1: after j steps the
    # prediction is the truth shifted by j points; for a single sine mode k=1 on n=16 points
    # rho(j) = cos(2 pi j / 16): below 0.9 first at j = 2 (cos(pi/4) = 0.707; j = 1: 0.924)
    n = 16
    x = 2 * np.pi * np.arange(n) / n
    u = np.stack([np.roll(np.sin(x), j) for j in range(9)])[None, :, None].astype(np.float32)
    data = _data()
    data.u, data.u_norm = u, u / 2.0
    data.cond, data.dt, data.t_start = data.cond[:1], data.dt[:1], data.t_start[:1]

    class Shift2(Shift):
        def __call__(self, w, cond, *, key=None):
            return super().__call__(w, cond, key=key)[-1:]

    s, _ = evaluate_model(Shift2(2), data, bootstrap_resamples=50, time_rollout=False)
    rho = np.array(s["curves"]["rho"]["mean"])
    np.testing.assert_allclose(rho, np.cos(2 * np.pi * np.arange(1, 9) / n), atol=1e-6)
    assert s["tau"]["0.9"]["mean"] == pytest.approx(2 * 0.25)
    assert s["tau"]["0.8"]["mean"] == pytest.approx(2 * 0.25)   # 0.707 < 0.8 as well
    assert s["tau"]["0.9"]["censored"] == 0
    assert s["tau"]["0.9"]["values"] == pytest.approx([2 * 0.25])


def test_stochastic_model_uncertainty_section():
    assert is_stochastic(Noisy()) is False
    data = _data(n=128, shift=0)   # a steady reference: the error is the noise alone

    class NoisyModel(AbstractModel):  # Noisy under the model interface, stochastic
        spec: ModelSpec = eqx.field(static=True)
        stochastic: ClassVar[bool] = True

        def __call__(self, u, cond, *, key=None):
            return Noisy()(u, cond, key=key)

    model = NoisyModel(ModelSpec(spatial_dims=1, history=1, future=1, channels=1, num_cond=0))
    assert is_stochastic(model)
    s, _ = evaluate_model(model, data, num_samples=8, bootstrap_resamples=100, time_rollout=False)
    u = s["uncertainty"]
    assert s["stochastic"] and s["num_samples"] == 8
    spread = np.array(u["spread"]["mean"])
    # samples are random walks with std 0.1 per step in normalised units (std 2 -> physical
    # 0.2): spread ~ 0.2 sqrt(j) on denormalised fields
    assert spread[0] == pytest.approx(0.2, rel=0.3)
    assert spread[-1] == pytest.approx(0.2 * np.sqrt(12), rel=0.3)
    # error of the 8-member mean ~ 0.2 sqrt(j / 8): both grow like sqrt(j), so they correlate
    error = np.array(u["error"]["mean"])
    assert error[-1] == pytest.approx(0.2 * np.sqrt(12 / 8), rel=0.3)
    assert u["corr_time"]["mean"] > 0.8
