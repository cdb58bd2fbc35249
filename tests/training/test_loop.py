"""The training loop end to end on a tiny model and tiny KS-like files."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import tiny_cfg
from omegaconf import OmegaConf
from tiny import flat_params, open_wrapped

from pdekit.training import NonFiniteLossError, load_run, train
from pdekit.training.checkpoint import Checkpoints
from pdekit.training.logs import read_metrics


def test_train_logs_checkpoints_resumes_and_loads(ks_files, tmp_path):
    cfg = tiny_cfg(ks_files, tmp_path, steps=24)
    res = train(cfg)
    run = tmp_path / "test" / "default"
    assert res.run_dir == run and not res.finished_before
    recs = read_metrics(run)
    assert [r["step"] for r in recs] == [4, 6, 8, 12, 16, 18, 20, 24]
    first, last = recs[0]["train/loss"], recs[-1]["train/loss"]
    assert last < 0.7 * first, (first, last)
    valid = [r for r in recs if "valid/rollout_corr" in r]
    assert [r["step"] for r in valid] == [6, 12, 18, 24]
    assert all(-1 <= r["valid/rollout_corr"] <= 1 for r in valid)
    assert valid[-1]["valid/one_step_mse"] < valid[0]["valid/one_step_mse"]
    assert recs[0]["lr"] == pytest.approx(3e-3 * (1 + np.cos(np.pi * 1 / 22)) / 2, rel=1e-5)
    ck = Checkpoints(run / "checkpoints", read_only=True)
    best_step = max(valid, key=lambda r: r["valid/rollout_corr"])["step"]
    assert sorted(ck.last.all_steps()) == [18, 24] and ck.best.all_steps() == [best_step]
    ck.close()
    saved = OmegaConf.load(run / "config.yaml")
    assert saved.derived.channels == 1 and saved.derived.spatial_shape == [32]
    assert saved.derived.num_params == (5 * 8 + 8) + (8 * 5 + 1) + (2 * 8 + 8)  # conv1, conv2, cond

    again = train(cfg)  # the same command again: reported as finished, nothing changes
    assert again.finished_before and again.step == 24
    assert len(read_metrics(run)) == len(recs)

    model, cfg2, stats = load_run(run, which="last", ema=True)
    raw = flat_params(run, ema=False)
    ema = {jax.tree_util.keystr(p): np.asarray(x)
           for p, x in jax.tree_util.tree_leaves_with_path(model)}
    assert raw.keys() == ema.keys()
    assert any(not np.array_equal(raw[k], ema[k]) for k in raw)  # EMA != raw weights
    assert cfg2.train.steps == 24 and stats.std[0] == pytest.approx(
        json.loads((run / "stats.json").read_text())["std"][0])
    u, cond = np.zeros((1, 1, 32), np.float32), np.zeros(2, np.float32)
    assert model(u, cond).shape == (1, 1, 32)

    with pytest.raises(ValueError, match="different config .*train.lr"):
        train(tiny_cfg(ks_files, tmp_path, steps=24, lr=1e-2))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(ks_files, tmp_path):
    cfg = tiny_cfg(ks_files, tmp_path, steps=24)
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* steps 9 and 12.*step 6"):
        train(cfg, data=open_wrapped(cfg, nan_from=9))  # batches from step index 9 on are NaN
    run = tmp_path / "test" / "default"
    ck = Checkpoints(run / "checkpoints", read_only=True)
    assert ck.last.all_steps() == [6]
    ck.close()
    params = flat_params(run, which="last", ema=False)
    assert params and all(np.isfinite(v).all() for v in params.values())
    assert [r["step"] for r in read_metrics(run)] == [4, 6, 8]


@pytest.mark.parametrize("train_kw, data_kw", [
    ({"objective": "pushforward", "unroll": 3}, {"history": 2}),
    ({"objective": "unrolled", "unroll": 2, "precision": "bf16"}, {"future": 2}),
])
def test_multi_step_objectives_and_bf16_train(ks_files, tmp_path, train_kw, data_kw):
    cfg = tiny_cfg(ks_files, tmp_path, steps=16, valid_every=16, ckpt_every=16, **train_kw)
    cfg["data"].update(data_kw)
    train(cfg)
    recs = read_metrics(tmp_path / "test" / "default")
    assert recs[-1]["train/loss"] < 0.8 * recs[0]["train/loss"], recs
    model, _, _ = load_run(tmp_path / "test" / "default")
    assert all(x.dtype == np.float32 for x in jax.tree.leaves(model))  # fp32 master params
