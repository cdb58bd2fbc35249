"""`pdekit train` on bad input: one line on stderr, exit 2, no run directory left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pdekit.cli.train import _run, main
from pdekit.training.preemption import TrainingInterrupted

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def short_file(tmp_path_factory) -> str:
    """A valid 1D file with 6 trajectories of 24 frames."""
    path = tmp_path_factory.mktemp("cli_data") / "train.h5"
    rng = np.random.default_rng(0)
    u = rng.normal(size=(6, 24, 1, 16)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs.update(pde="ks", dt=0.2, spatial_dims=1, schema_version=1, config="{}",
                       created_by="tests", complete=True, completed_trajectories=6)
        f["u"], f["t"], f["x"] = u, np.arange(24) * 0.2, np.arange(16) / 16
        f["params/dt"], f["params/dx"] = np.full(6, 0.2), np.full(6, 1 / 16)
    return str(path)


def _fail(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("pdekit train: error: "), err
    return err


@pytest.mark.parametrize("args, words", [
    (["model=no_such_model"], ["unknown model preset 'no_such_model'", "mppde1d"]),
    (["experiment=no_such_exp"], ["unknown experiment preset 'no_such_exp'", "ks_fno"]),
    (["train.stepz=3"], ["train.stepz"]),
    (["train.steps=many"], ["train.steps"]),
    (["data.train_path=/nonexistent/train.h5"], ["/nonexistent/train.h5", "does not exist"]),
    (["data.history=30"], ["history=30", "24"]),
    (["train.objective=l2"], ["train.objective"]),
])
def test_bad_input_is_one_line_exit_2_and_no_run_dir(capsys, tmp_path, short_file, args, words):
    base = ["model=mppde1d", f"data.train_path={short_file}", "data.valid_path=null",
            f"run.root={tmp_path / 'runs'}"]
    err = _fail(capsys, base + args)
    assert all(w in err for w in words), err
    assert not (tmp_path / "runs").exists()


def test_batch_not_divisible_by_devices(tmp_path, short_file):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    env.pop("PDEKIT_TRACEBACK", None)
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from pdekit.cli import main; main(sys.argv[1:])",
         "train", "model=mppde1d",
         f"data.train_path={short_file}", "data.valid_path=null", "train.batch_size=6",
         f"run.root={tmp_path / 'runs'}"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == ("pdekit train: error: train.batch_size=6 is not divisible by "
                                  "the 4 devices; use a multiple of 4")
    assert not (tmp_path / "runs").exists()


def test_help_lists_presets(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert "experiment=" in out and "demo_ks_unet" in out and "mppde1d" in out


def test_cli_trains_then_reports_finished(capsys, tmp_path, short_file):
    argv = ["experiment=demo_ks_unet", "model=fno1d", "model.width=8", "model.modes=4",
            "model.num_layers=1", "model.projection_channels=8", f"data.train_path={short_file}",
            "data.valid_path=null", "data.stride=1", "train.steps=4", "train.batch_size=4",
            "train.progress=false", f"run.root={tmp_path}", "run.name=cli"]
    main(argv)
    run = tmp_path / "demo_ks_unet" / "cli"
    assert (run / "config.yaml").exists() and (run / "checkpoints" / "last" / "4").is_dir()
    capsys.readouterr()
    main(argv)
    assert f"run {run} already finished at step 4" in capsys.readouterr().err


def test_sweep_expands_comma_lists_but_not_brackets():
    from pdekit.training.sweep import sweep

    assert sweep(["experiment=a,b", "train.steps=3", "data.cond_keys=[dt,dx]", "seed=0,1"]) == [
        ["experiment=a", "train.steps=3", "data.cond_keys=[dt,dx]", "seed=0", "run.name=seed-0"],
        ["experiment=a", "train.steps=3", "data.cond_keys=[dt,dx]", "seed=1", "run.name=seed-1"],
        ["experiment=b", "train.steps=3", "data.cond_keys=[dt,dx]", "seed=0", "run.name=seed-0"],
        ["experiment=b", "train.steps=3", "data.cond_keys=[dt,dx]", "seed=1", "run.name=seed-1"],
    ]
    # only experiments swept: the experiment names the directory, run.name is left alone
    assert sweep(["experiment=a,b", "run.name=x"]) == [
        ["experiment=a", "run.name=x"], ["experiment=b", "run.name=x"]]
    # the user's run.name is kept as a prefix; odd characters of a value become "_"
    assert sweep(["run.name=w", "model.width=32,64", "data.train_path=d/a.h5,d/b.h5"])[1] == [
        "model.width=32", "data.train_path=d/b.h5", "run.name=w_model.width-32_data.train_path-d_b.h5"]


def test_cfg_job_prints_resolved_config(capsys):
    from pdekit.cli.train import main

    main(["experiment=ks_fno", "train.steps=7", "--cfg", "job"])
    out = capsys.readouterr().out
    assert "steps: 7" in out and "fno" in out


@pytest.mark.parametrize("error, code", [
    (TrainingInterrupted(signal.SIGTERM, 7), 143),
    (TrainingInterrupted(signal.SIGINT, 7), 130),
    (KeyboardInterrupt(), 130),
])
def test_cli_exit_codes(capsys, error, code):
    def stopped(cfg):
        raise error

    class Never(Exception):
        pass

    with pytest.raises(SystemExit) as exit_info:
        _run(stopped, None, Never, TrainingInterrupted)
    assert exit_info.value.code == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pdekit train: "), err
    if isinstance(error, TrainingInterrupted):
        assert "at step 7; checkpoint saved, run the same command to resume" in err
