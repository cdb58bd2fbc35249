"""`pdekit inspect` on generated, PDEArena, corrupt, truncated and foreign files (in-process)."""

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pdekit_datafixtures import tiny_ks_config, write_pdearena  # noqa: E402

from pdekit.cli import main  # noqa: E402
from pdekit.data import generate_dataset  # noqa: E402


def inspect(*args):
    try:
        main(["inspect", *map(str, args)])
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.fixture(scope="module")
def ks_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "ks.h5"
    generate_dataset(tiny_ks_config(out, num_trajectories=3))
    return out


def test_inspect_generated_file_and_plot(ks_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pdekit"])
    png = tmp_path / "ks.png"
    assert inspect(ks_file, "--plot", png) == 0
    out = capsys.readouterr().out
    assert "pde: ks  split: train" in out and "trajectories: 3  frames: 140" in out
    assert "u                        (3, 140, 1, 32)" in out
    for name in ("L", "dt", "dx", "nu", "final_time"):
        assert f"\n  {name} " in out
    assert "check: OK" in out
    with h5py.File(ks_file) as f:
        u = f["u"][()]
    assert f"min {u.min():.6g} | max {u.max():.6g}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert not list(png.parent.glob(".*.tmp-*"))  # no temporary left


def test_inspect_pdearena_all_splits_and_one(tmp_path, capsys):
    path = tmp_path / "arena.h5"
    write_pdearena(path)
    assert inspect(path) == 0
    out = capsys.readouterr().out
    assert "PDEArena/LPSDA layout" in out
    assert "split: train" in out and "split: valid" in out and out.count("check: OK") == 2
    assert inspect(path, "--split", "valid", "--plot", tmp_path / "a.png") == 0
    out = capsys.readouterr().out
    assert "split: valid" in out and "split: train" not in out
    assert (tmp_path / "a.png").exists()


def test_inspect_reports_non_finite(tmp_path, capsys):
    path = tmp_path / "nan.h5"
    write_pdearena(path, sizes={"train": 4})
    with h5py.File(path, "r+") as f:
        f["train/pde_12-16"][2, 5, 3] = np.nan
    assert inspect(path) == 1
    assert "check: FAILED - 1 non-finite values in trajectories [2]" in capsys.readouterr().out


def test_inspect_bad_files_exit_2(tmp_path, ks_file, capsys):
    rnd = tmp_path / "random.h5"
    rnd.write_bytes(np.random.default_rng(1).bytes(2000))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(ks_file.read_bytes()[:5000])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["weights"] = np.ones(3)
    cases = [(rnd, "corrupt or truncated"), (cut, "truncated file"),
             (foreign, "not a pdekit or PDEArena trajectory file"),
             (tmp_path / "absent.h5", "no such file")]
    for path, message in cases:
        assert inspect(path) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pdekit inspect: error: ") and message in err and "\n" not in err
