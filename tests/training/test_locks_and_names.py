"""Locks, plain run names and values checked before a run directory exists (issue 16, part 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import tiny_cfg
from omegaconf import OmegaConf

from pdekit._io import ExclusiveLock, LockedError
from pdekit.configs import compose
from pdekit.data.stats import NormStats
from pdekit.training.config import validate
from pdekit.training.loop import train
from pdekit.training.run import LOCK_NAME, prepare_run_dir, release_run_lock

FNO = {"_target_": "pdekit.models.fno.FNO", "width": 4, "modes": 4, "num_layers": 1,
       "projection_channels": 4}
STATS = {"mean": [0.5], "std": [2.0], "diff_mean": [0.0], "diff_std": [1.0],
         "spatial_dims": 1, "diff_stride": 1}
DERIVED = {"spatial_dims": 1, "spatial_shape": [32], "channels": 1, "num_cond": 2,
           "num_windows": 64, "devices": 1, "num_params": 100}
HOLD = ("import sys, time; from pdekit._io import ExclusiveLock; "
        "ExclusiveLock(sys.argv[1], 'x').acquire(); print('locked', flush=True); time.sleep(60)")
TRY = ("import sys; from pdekit._io import ExclusiveLock, LockedError\n"
       "try: ExclusiveLock(sys.argv[1], 'x').acquire()\n"
       "except LockedError: sys.exit(3)")

def train_main(argv):
    """What ``pdekit train <argv>`` does, through the library (tests/cli tests the command)."""
    return train(compose("train", argv))


def holder(path) -> subprocess.Popen:
    """Another process that holds the lock on ``path`` until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def can_lock_elsewhere(path) -> bool:
    return subprocess.run([sys.executable, "-c", TRY, str(path)], timeout=60).returncode == 0


def prepared_cfg(ks_files, root, **train_kw):
    cfg = validate(tiny_cfg(ks_files, root, model=FNO, **train_kw))
    cfg.derived = DERIVED
    return cfg


def test_lock_refuses_a_second_process_and_is_freed_when_the_holder_dies(tmp_path):
    path = tmp_path / "x.lock"
    proc = holder(path)
    try:
        with pytest.raises(LockedError, match=rf"x is in use by another process \(pid {proc.pid}\)"):
            ExclusiveLock(path, "x").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with ExclusiveLock(path, "x") as lock:  # the kernel released the dead holder's lock
        assert lock.held and path.read_text().strip() == str(os.getpid())
    assert path.exists()  # kept (remove=False); a lock file nobody holds blocks nothing


def test_removed_lock_file_is_recreated_not_shared(tmp_path):
    path = tmp_path / "out.lock"
    lock = ExclusiveLock(path, "out", remove=True).acquire()
    assert not can_lock_elsewhere(path)
    lock.release()
    assert not path.exists() and can_lock_elsewhere(path)


def test_run_dir_lock_is_held_from_prepare_until_release(ks_files, tmp_path):
    cfg = prepared_cfg(ks_files, tmp_path)
    run = prepare_run_dir(cfg, NormStats.from_dict(STATS))
    assert not can_lock_elsewhere(run / LOCK_NAME)
    assert prepare_run_dir(cfg, NormStats.from_dict(STATS)) == run  # re-entrant in one process
    release_run_lock(run)
    assert can_lock_elsewhere(run / LOCK_NAME)


def test_second_train_on_a_busy_run_dir_refuses_in_one_line(ks_files, tmp_path, capsys):
    run = tmp_path / "runs" / "demo" / "busy"
    run.mkdir(parents=True)
    proc = holder(run / LOCK_NAME)  # stands for a `pdekit train` working in that directory
    try:
        with pytest.raises((ValueError, OSError)) as exit_info:
            train_main(["model=fno1d", "model.width=4", "model.modes=4", "model.num_layers=1",
                        f"data.train_path={ks_files['train']}", "data.valid_path=null",
                        "train.batch_size=4", f"run.root={tmp_path / 'runs'}",
                        "run.experiment=demo", "run.name=busy", "train.progress=false"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    err = str(exit_info.value).strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == (f"run directory {run} is in use by another process "
                      f"(pid {proc.pid}); wait for it to finish, or stop it (lock file "
                      f"{run.resolve() / LOCK_NAME})")
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written


@pytest.mark.parametrize("key", ["name", "experiment"])
@pytest.mark.parametrize("value", ["../../escape", "/abs/path", "", "..", ".", "a/b", "a\\b",
                                   "~user", "${oc.env:HOME}", "${oc.env:USER,me}", " pad"])
def test_run_names_must_be_plain(ks_files, tmp_path, key, value):
    cfg = tiny_cfg(ks_files, tmp_path)
    cfg["run"][key] = value
    with pytest.raises(ValueError, match=rf"^run\.{key}=.* must be a plain"):
        validate(cfg)


def test_escaping_name_on_the_command_line_creates_nothing(ks_files, tmp_path, capsys):
    root = tmp_path / "a" / "b" / "runs"
    with pytest.raises((ValueError, OSError)) as exit_info:
        train_main(["model=fno1d", f"data.train_path={ks_files['train']}",
                    f"run.root={root}", "run.name=../../escape"])
    assert "run.name='../../escape' must be a plain name" in str(exit_info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


@pytest.mark.parametrize("section, key, value, words", [
    ("train", "batch_size", 10**12, "train.batch_size must be < 2**31"),
    (None, "seed", -1, "seed must be in [0, 2**32)"),
    ("data", "rollout_steps", -3, "data.rollout_steps must be >= 0"),
    ("data", "valid_batches", -2, "data.valid_batches must be >= 0"),
    ("train", "grad_clip", -1.0, "train.grad_clip must be finite and >= 0"),
    ("data", "ram_budget_bytes", -1, "data.ram_budget_bytes must be >= 0"),
    ("train", "lr", float("inf"), "train.lr must be finite"),
    ("train", "difference_scale", float("nan"), "train.difference_scale must be finite"),
    ("data", "valid_trajectories", -1, "data.valid_trajectories must be >= 1"),
    ("train", "time_budget_s", float("inf"), "train.time_budget_s must be finite"),
    ("train", "steps", 2**31, "train.steps must be < 2**31"),
    ("train", "b2", 1.0, "train.b1 and train.b2 must be in [0, 1)"),
    ("data", "cond_range", {"dt": [1.0, 1.0]}, "data.cond_range values must be [low, high]"),
])
def test_bad_values_fail_in_validate(ks_files, tmp_path, section, key, value, words):
    cfg = tiny_cfg(ks_files, tmp_path)
    (cfg[section] if section else cfg)[key] = value
    with pytest.raises(ValueError) as err:
        validate(cfg)
    assert words in str(err.value)


@pytest.mark.parametrize("model, train_kw, words", [
    ({**FNO, "num_layers": -1}, {}, "model.num_layers=-1 must be >= 0"),
    ({**FNO, "width": float("nan")}, {}, "model.width=nan must be a finite number"),
    ({**FNO, "modes": 100000}, {}, "does not fit the data (input (1, 1, 32)): SpectralConv: "
                                   "modes=100000 needs every spatial size >= 200000"),
    (FNO, {"batch_size": 10**6}, "train.batch_size=1000000 exceeds the 368 training windows"),
])
def test_values_that_need_the_data_fail_before_the_run_dir(ks_files, tmp_path, model, train_kw,
                                                           words):
    with pytest.raises(ValueError) as err:
        train(tiny_cfg(ks_files, tmp_path / "runs", model=model, **train_kw))
    assert words in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_left_over_dir_without_checkpoint_is_replaced_one_with_is_refused(ks_files, tmp_path,
                                                                          capsys):
    stats = NormStats.from_dict(STATS)
    first = prepared_cfg(ks_files, tmp_path, lr=1e-3)
    run = prepare_run_dir(first, stats)
    (run / "metrics.jsonl").write_text('{"step": 4}\n')
    corrected = prepared_cfg(ks_files, tmp_path, lr=2e-3)
    assert prepare_run_dir(corrected, stats) == run
    assert "held no checkpoint" in capsys.readouterr().err
    assert OmegaConf.load(run / "config.yaml").train.lr == 2e-3
    assert not (run / "metrics.jsonl").exists()
    (run / "checkpoints" / "last" / "6").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds a run with a different config .key 'train.lr'"):
        prepare_run_dir(first, stats)
    (run / "config.yaml").unlink()
    with pytest.raises(ValueError, match="has checkpoints but no readable config.yaml"):
        prepare_run_dir(corrected, stats)
    (run / "config.yaml").write_text("train: [broken\n")
    with pytest.raises(ValueError, match="has checkpoints but no readable config.yaml"):
        prepare_run_dir(corrected, stats)


def test_resume_rewrites_missing_stats_and_refuses_changed_data(ks_files, tmp_path):
    cfg = prepared_cfg(ks_files, tmp_path)
    run = prepare_run_dir(cfg, NormStats.from_dict(STATS))
    (run / "checkpoints" / "last" / "6").mkdir(parents=True)
    (run / "stats.json").unlink()
    prepare_run_dir(cfg, NormStats.from_dict(STATS))
    assert json.loads((run / "stats.json").read_text())["std"] == [2.0]
    changed = NormStats.from_dict({**STATS, "std": [3.0]})
    with pytest.raises(ValueError, match="data.train_path changed since the run started"):
        prepare_run_dir(cfg, changed)
