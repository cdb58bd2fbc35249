"""`pdekit generate` (Hydra app), mostly in-process through `pdekit.cli.main`."""

import subprocess
import sys
from pathlib import Path

import h5py
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pdekit_datafixtures import TINY_KS_OVERRIDES  # noqa: E402

from pdekit.cli import main  # noqa: E402


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Run `pdekit generate ...` in-process from a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pdekit"])
    monkeypatch.setenv("TMPDIR", str(tmp_path / "sys_tmp"))

    def run(*args):
        try:
            main(["generate", *args])
        except SystemExit as exc:
            return exc.code
        return 0

    return run


def test_generate_then_refuse_then_overwrite(cli, capsys, tmp_path):
    args = [*TINY_KS_OVERRIDES, "num_trajectories=3", "output=out/ks.h5"]
    assert cli(*args) == 0
    out = tmp_path / "out" / "ks.h5"
    with h5py.File(out, "r") as f:
        assert f["u"].shape == (3, 140, 1, 32) and f.attrs["complete"]
        stamp = f.attrs["config"]
    assert "wrote out/ks.h5" in capsys.readouterr().out
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err == "pdekit generate: error: out/ks.h5 exists; pass overwrite=true to replace it"
    assert cli(*args, "overwrite=true", "seed=5") == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["config"] != stamp and "seed: 5" in f.attrs["config"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no outputs/ or .hydra
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ks.h5"]


@pytest.mark.parametrize("args, message", [
    (["pde=nope"], "unknown preset pde=nope; choose from burgers_fno, burgers_forced, ks,"),
    (["pde.splits.train.keep=600"], "keep=600 frames is impossible with frames=500"),
    (["split=holdout"], "split 'holdout' is not defined by preset 'ks'"),
    (["pde.cfl=5", "pde=burgers_fno"], "pde.cfl=5.0 is outside"),
])
def test_bad_input_one_line(cli, capsys, tmp_path, args, message):
    assert cli(*TINY_KS_OVERRIDES, *args, "output=x.h5") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdekit generate: error: ") and message in err
    assert "\n" not in err
    assert not any(tmp_path.glob("x.h5*"))


def test_cfg_job_and_help(cli, capsys):
    assert cli("pde=burgers_forced", "split=valid", "--cfg", "job") == 0
    out = capsys.readouterr().out
    assert "name: burgers_forced" in out and "split: valid" in out
    assert "output: datasets/burgers_forced/valid.h5" in out
    assert cli("--help") == 0
    out = capsys.readouterr().out
    assert ("Presets (pde=...): burgers_fno, burgers_forced, ks, ks_conditional, ns2d_fno, "
            "ns2d_kolmogorov") in out
    for key in ("num_trajectories", "batch_size", "overwrite", "solve_precision"):
        assert key in out


def test_multirun_sweep(cli, tmp_path):
    args = [*TINY_KS_OVERRIDES, "num_trajectories=2", "output=sweep/seed${seed}.h5"]
    assert cli("-m", *args, "seed=0,1") == 0
    with h5py.File(tmp_path / "sweep/seed0.h5") as a, h5py.File(tmp_path / "sweep/seed1.h5") as b:
        assert a.attrs["split_seed"] != b.attrs["split_seed"]
        assert (a["params/L"][()] != b["params/L"][()]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep", "sys_tmp"]


def test_subprocess_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "from pdekit.cli import main; main()", "generate", "pde=ks",
                           "num_trajectories=-1", f"output={tmp_path / 'x.h5'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("pdekit generate: error: num_trajectories must be >= 1, "
                                   "got -1")
