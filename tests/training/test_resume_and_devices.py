"""Exact resume after SIGKILL, and 4 simulated CPU devices against 1 (subprocess tests)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import tiny_cfg
from test_distributed import env
from tiny import flat_params, open_wrapped

from pdekit.training import train
from pdekit.training.logs import read_metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _finished_steps(run: Path) -> list[int]:
    last = run / "checkpoints" / "last"
    return sorted(int(p.name) for p in last.iterdir() if p.name.isdigit()) if last.exists() else []


def test_sigkill_at_random_step_then_rerun_is_bitwise_identical(ks_files, tmp_path):
    kw = dict(steps=40, ckpt_every=5, log_every=5, valid_every=20, keep_last=2)
    cfg = tiny_cfg(ks_files, tmp_path / "killed", **kw)
    run = tmp_path / "killed" / "test" / "default"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, str(HERE / "tiny.py"), str(tmp_path / "cfg.json"),
                             "--delay", "0.05"], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not _finished_steps(run):
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.8))  # a random step after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _finished_steps(run)[-1]
    assert 5 <= killed_at < 40, killed_at  # the kill landed mid-run

    resumed = train(cfg, data=open_wrapped(cfg))  # the same run again: resumes
    assert resumed.step == 40 and not resumed.finished_before
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == 40  # no duplicated records

    train(tiny_cfg(ks_files, tmp_path / "ref", **kw))
    ref_run = tmp_path / "ref" / "test" / "default"
    for ema in (False, True):
        a, b = flat_params(run, ema=ema), flat_params(ref_run, ema=ema)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == np.float32 and np.array_equal(a[k], b[k]), (killed_at, ema, k)


def test_four_cpu_devices_match_one_device(ks_files, tmp_path):
    kw = dict(steps=6, log_every=3, valid_every=6, ckpt_every=6, lr=1e-3)
    cfg4 = tiny_cfg(ks_files, tmp_path / "d4", **kw)
    (tmp_path / "cfg4.json").write_text(json.dumps(cfg4))
    out = subprocess.run(
        [sys.executable, str(HERE / "tiny.py"), str(tmp_path / "cfg4.json")],
        env=env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"),
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "on 4 device(s)" in out.stderr
    train(tiny_cfg(ks_files, tmp_path / "d1", **kw))
    p4 = flat_params(tmp_path / "d4" / "test" / "default")
    p1 = flat_params(tmp_path / "d1" / "test" / "default")
    for k in p1:
        np.testing.assert_allclose(p4[k], p1[k], rtol=1e-5, atol=1e-7, err_msg=k)
    l4 = [r["train/loss"] for r in read_metrics(tmp_path / "d4" / "test" / "default")]
    l1 = [r["train/loss"] for r in read_metrics(tmp_path / "d1" / "test" / "default")]
    np.testing.assert_allclose(l4, l1, rtol=1e-5)
