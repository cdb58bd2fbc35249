"""`pdekit generate` checks keys, sizes, disk space and its lock before writing (issue 16, 5)."""

import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pdekit_datafixtures import TINY_KS_OVERRIDES  # noqa: E402

import pdekit._io  # noqa: E402
from pdekit.cli import main  # noqa: E402

HOLD = ("import sys, time; from pdekit._io import ExclusiveLock; "
        "ExclusiveLock(sys.argv[1], 'x').acquire(); print('locked', flush=True); time.sleep(60)")


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    """Run `pdekit generate ...` in-process; returns (exit status, stderr lines)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["pdekit"])
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    def run(*args):
        capsys.readouterr()
        try:
            main(["generate", *TINY_KS_OVERRIDES, *args])
            code = 0
        except SystemExit as exc:
            code = exc.code
        return code, capsys.readouterr().err.strip().splitlines()

    return run


def _one_line(result, *words):
    code, err = result
    assert code == 2 and len(err) == 1 and err[0].startswith("pdekit generate: error: "), err
    for w in words:
        assert w in err[0], err[0]


@pytest.mark.parametrize("args, words", [
    (["num_trajectoris=3"], ["unknown key 'num_trajectoris'", "--help"]),
    (["+pde.foo=1"], ["unknown key pde.foo; known: cfl"]),
    (["+foo=1"], ["unknown key 'foo'"]),
    (["+pde.initial_condition.nterms=3"], ["unknown key pde.initial_condition.nterms"]),
    (["+pde.splits.train.nframes=9"], ["unknown key pde.splits.train.nframes"]),
    (["-m", "seed=0,1", "+pde.bar=2"], ["unknown key pde.bar"]),  # checked before any job
    (["output=${nope}"], ["bad config key 'output'", "nope"]),
    (["seed=0,1"], ["seed=0,1 sweeps several values; add -m"]),
])
def test_bad_keys_are_one_line_and_write_nothing(cli, tmp_path, args, words):
    _one_line(cli("num_trajectories=2", "output=out/x.h5", *args), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_huge_split_is_refused_by_its_size(cli, tmp_path):
    _one_line(cli(f"num_trajectories={10**12}", "output=out/x.h5"),
              "out/x.h5 (1000000000000 of 1000000000000 trajectories to write) needs about "
              "17.6 PiB")
    assert not (tmp_path / "out").exists()


def _contents(path) -> dict:
    """Every dataset (as bytes) and attribute of an HDF5 file, by name."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}

        def visit(name, obj):
            attrs = {k: np.asarray(v).tolist() for k, v in obj.attrs.items()}
            out[name] = (obj[()].tobytes() if isinstance(obj, h5py.Dataset) else None, attrs)

        f.visititems(visit)
    return out


def test_full_disk_fails_cleanly_before_and_during_writing(cli, tmp_path, monkeypatch):
    real = pdekit._io.free_bytes
    monkeypatch.setattr(pdekit._io, "free_bytes", lambda path: 10 << 20)
    _one_line(cli("num_trajectories=4", "output=out/x.h5"), "needs about", "10.0 MiB free")
    assert not (tmp_path / "out").exists()

    calls = []  # plenty of space for the up-front checks and the first batch, then none

    def filling(path):
        calls.append(path)
        return real(path) if len(calls) <= 3 else 0

    monkeypatch.setattr(pdekit._io, "free_bytes", filling)
    _one_line(cli("num_trajectories=4", "output=out/x.h5"), "the next batch of", "0 B free")
    with h5py.File(tmp_path / "out" / "x.h5.tmp", "r") as f:  # kept: the first batch resumes
        assert f.attrs["completed_trajectories"] == 2
    monkeypatch.setattr(pdekit._io, "free_bytes", real)
    assert cli("num_trajectories=4", "output=out/x.h5")[0] == 0
    assert cli("num_trajectories=4", "output=out/y.h5")[0] == 0  # uninterrupted
    resumed, whole = _contents(tmp_path / "out" / "x.h5"), _contents(tmp_path / "out" / "y.h5")
    configs = resumed["/"].pop("config"), whole["/"].pop("config")  # they name their output
    assert configs[0].replace("out/x.h5", "out/y.h5") == configs[1]
    assert resumed.keys() == whole.keys() and resumed == whole  # same content (not bytes)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.h5", "y.h5"]


def test_second_generate_on_one_output_refuses_and_leaves_the_tmp(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    tmp = out / "x.h5.tmp"
    tmp.write_bytes(b"half-written by the other process")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "x.h5.lock")],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        _one_line(cli("num_trajectories=2", "output=out/x.h5"),
                  f"output out/x.h5 is in use by another process (pid {proc.pid})")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert tmp.read_bytes() == b"half-written by the other process"
    assert sorted(p.name for p in out.iterdir()) == ["x.h5.lock", "x.h5.tmp"]
