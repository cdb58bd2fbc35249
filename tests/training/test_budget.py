"""Wall-clock budget: the schedule horizon moves to the step the budget reaches."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_cfg
from omegaconf import OmegaConf

from pdekit.training import train
from pdekit.training.budget import WallClockBudget
from pdekit.training.logs import read_metrics
from pdekit.training.optim import lr_schedule, make_optimizer, scale_updates


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_horizon_from_measured_rate_hand_computed():
    clock = FakeClock()
    b = WallClockBudget(60.0, max_steps=10_000, clock=clock)
    clock.t += 12.0  # compilation and the first 50 steps
    assert b.horizon(50, 10_000) == 10_000  # first sync: no rate yet
    clock.t += 8.0  # 100 steps in 8 s -> 12.5 steps/s; 40 s left -> 500 more steps
    assert b.horizon(150, 10_000) == 150 + 500
    clock.t += 8.0  # same rate, 32 s left -> 400 more (rate over 200 steps in 16 s)
    assert b.horizon(250, 650) == 250 + 400
    clock.t += 40.0  # budget spent: end now
    assert b.horizon(300, 650) == 300


def test_validations_are_left_out_of_the_rate_and_paid_for_ahead():
    clock = FakeClock()
    b = WallClockBudget(100.0, max_steps=10_000, clock=clock, valid_every=50)
    clock.t += 10.0
    assert b.horizon(100, 10_000) == 10_000  # first sync: no rate yet
    b.validated(25.0, warm_s=5.0)  # compiled (20 s) then timed warm (5 s)
    assert b.timed and b.reserve_s == 5.0
    clock.t += 25.0 + 10.0  # the two validations, then 100 steps in 10 s
    # 100 - 45 used - 5 closing = 50 s left; per 100 steps: 10 s + 2 validations x 5 s = 20 s
    assert b.horizon(200, 10_000) == 200 + 250
    b.validated(4.0)  # a periodic one, cheaper: kept
    assert b.reserve_s == 4.0
    clock.t += 4.0 + 10.0
    # 100 - 59 - 4 = 37 s left; 200 steps took 20 s of stepping + 200 / 50 x 4 s = 36 s
    assert b.horizon(300, 450) == 300 + 205  # floor(37 x 200 / 36)
    clock.t += 40.0  # 99 s used + 4 reserved: past the budget, end now
    assert b.horizon(350, 505) == 350


def test_horizon_is_capped_by_steps_and_counts_earlier_attempts():
    clock = FakeClock()
    b = WallClockBudget(100.0, max_steps=300, elapsed_s=90.0, clock=clock)
    clock.t += 1.0
    assert b.horizon(10, 300) == 300
    clock.t += 1.0  # 10 steps/s with 8 s left -> 80 more
    assert b.horizon(20, 300) == 100
    big = WallClockBudget(1e6, max_steps=300, clock=clock)
    big.horizon(10, 300)
    clock.t += 1.0
    assert big.horizon(20, 300) == 300
    off = WallClockBudget(0.0, max_steps=300, clock=clock)
    assert not off.enabled and off.horizon(20, 300) == 300


def test_schedule_matches_optax_at_any_horizon():
    cfg = OmegaConf.create({"steps": 1000, "warmup_steps": 10, "lr": 1e-3, "min_lr_ratio": 0.1})
    lr_at = lr_schedule(cfg)
    for horizon in (110, 400, 1000):
        ref = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 10, horizon, end_value=1e-4)
        for step in (0, 5, 10, 37, horizon // 2, horizon - 1, horizon, horizon + 50):
            assert float(lr_at(step, horizon)) == pytest.approx(float(ref(step)), rel=1e-5, abs=1e-12)
    assert float(lr_at(500)) == pytest.approx(float(lr_at(500, 1000)))  # default horizon = steps


def test_direction_times_lr_is_optax_adamw():
    cfg = OmegaConf.create({"grad_clip": 0.0, "b1": 0.9, "b2": 0.99, "weight_decay": 0.01})
    p = {"w": jnp.array([0.5, -1.0, 2.0])}
    grads = [{"w": jnp.array([0.3, -0.2, 0.1])}, {"w": jnp.array([-0.1, 0.4, 0.2])}]
    ours = make_optimizer(cfg)
    ref = optax.adamw(3e-3, b1=0.9, b2=0.99, weight_decay=0.01)
    ours_s, ref_s, p1, p2 = ours.init(p), ref.init(p), p, p
    for g in grads:
        u1, ours_s = ours.update(g, ours_s, p1)
        p1 = optax.apply_updates(p1, scale_updates(u1, 3e-3))
        u2, ref_s = ref.update(g, ref_s, p2)
        p2 = optax.apply_updates(p2, u2)
    np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-6)


def test_budgeted_run_ends_its_schedule_within_the_budget(ks_files, tmp_path):
    cfg = tiny_cfg(ks_files, tmp_path, steps=1_000_000, time_budget_s=8.0, warmup_steps=0,
                   min_lr_ratio=0.1, log_every=20, valid_every=1_000_000, ckpt_every=1_000_000)
    res = train(cfg)
    assert 40 <= res.step < 1_000_000
    recs = read_metrics(res.run_dir)
    assert recs[-1]["step"] == res.step and recs[-1]["horizon"] == res.step
    # the last interval ran under the horizon set one sync earlier: the cosine reaches its end
    # value when the rate held (horizon == step); a slower last interval ends it early
    h_prev = recs[-2]["horizon"]
    assert res.step <= h_prev
    end = 3e-3 * 0.1 + 0.5 * 3e-3 * 0.9 * (1 + np.cos(np.pi * (res.step - 1) / h_prev))
    assert recs[-1]["lr"] == pytest.approx(end, rel=1e-4)
    assert "valid/rollout_corr" in recs[-1]  # validated at the end
    assert "valid/rollout_corr" in recs[0]  # and at the first sync, to time a validation
    again = train(cfg)  # finished by its budget: the same command does nothing
    assert again.finished_before and again.step == res.step


def test_budgeted_run_with_periodic_validation_ends_on_a_validated_step(ks_files, tmp_path):
    cfg = tiny_cfg(ks_files, tmp_path, steps=1_000_000, time_budget_s=6.0, warmup_steps=0,
                   log_every=10, valid_every=10, ckpt_every=1_000_000)
    res = train(cfg)
    assert 10 <= res.step < 1_000_000
    recs = read_metrics(res.run_dir)
    steps = [r["step"] for r in recs]
    assert steps == sorted(set(steps)) and steps[-1] == res.step  # one record per sync
    assert set(range(10, res.step + 1, 10)) <= set(steps)
    assert all("valid/rollout_corr" in r for r in recs if r["step"] % 10 == 0)
    assert "valid/rollout_corr" in recs[-1]
    assert recs[-1]["horizon"] == res.step


def test_negative_budget_is_refused(ks_files, tmp_path):
    with pytest.raises(ValueError, match="time_budget_s must be >= 0"):
        train(tiny_cfg(ks_files, tmp_path, time_budget_s=-1.0))
    assert not (tmp_path / "test").exists()
