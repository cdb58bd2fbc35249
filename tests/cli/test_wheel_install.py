"""A plain (non-editable) install works from outside the checkout: the configs ship in the wheel.

Builds the wheel of this checkout, installs it with no dependencies into a fresh venv whose
only other path entry is the test venv's site-packages (there the checkout is an *editable*
install, whose finder a plain path entry does not load), and runs the console script from a
directory outside the checkout.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import h5py
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd, cwd, env=None, check=True):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: setuptools writes build/ and *.egg-info beside it
    shutil.copytree(ROOT / "pdekit", src / "pdekit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", tmp / "dist", src], cwd=tmp)
    wheel = next((tmp / "dist").glob("pdekit-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
          "--no-index", wheel], cwd=tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PDEKIT_CONFIG_PATH")}
    work = tmp / "elsewhere"
    work.mkdir()
    return venv, work, env


def test_installed_package_is_the_wheel_not_the_checkout(installed):
    venv, work, env = installed
    out = _run([venv / "bin" / "python", "-c",
                "import pdekit, pdekit.configs as c; print(pdekit.__file__); print(c.package_dir())"],
               cwd=work, env=env).stdout.split()
    assert all(str(venv) in p and str(ROOT) not in p for p in out), out
    assert (Path(out[1]) / "model" / "unetmod1d_64.yaml").exists()


def test_cli_from_outside_the_checkout(installed, tmp_path):
    venv, work, env = installed
    pdekit = venv / "bin" / "pdekit"
    assert "run=" in _run([pdekit, "evaluate", "--help"], cwd=work, env=env).stdout
    _run([pdekit, "generate", "pde=ks", "split=train", "num_trajectories=2",
          "pde.solve_resolution=64", "pde.resolution=32", "batch_size=2", "progress=false",
          "output=ks.h5"], cwd=work, env=env)
    with h5py.File(work / "ks.h5") as f:
        assert f["u"].shape == (2, 140, 1, 32) and f.attrs["complete"]
    # a user's own preset directory, through --config-dir and through the environment
    own = tmp_path / "mine" / "model"
    own.mkdir(parents=True)
    (own / "tiny_fno.yaml").write_text("_target_: pdekit.models.fno.FNO\nwidth: 4\nmodes: 2\n")
    listed = _run([pdekit, "--config-dir", own.parent, "train", "--help"], cwd=work, env=env).stdout
    assert "tiny_fno" in listed and "unetmod1d_64" in listed and "ks_pderefiner" in listed
    assert "(none)" not in listed  # every group lists the shipped presets
    env2 = {**env, "PDEKIT_CONFIG_PATH": str(own.parent)}
    cfg = _run([pdekit, "train", "model=tiny_fno", "--cfg", "job"], cwd=work, env=env2).stdout
    assert "width: 4" in cfg
    missing = _run([pdekit, "train", "model=nope"], cwd=work, env=env, check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
