"""Two processes (jax.distributed over gloo, 2 simulated CPU devices each) on localhost.

The job is killed mid-way, resumed by the same two-process command, and must end where a
one-process run on 4 simulated devices ends: the same loss records and final parameters
(up to the summation order of a cross-process all-reduce). Logs are written once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_cfg
from tiny import flat_params

from pdekit.training.logs import read_metrics
from pdekit.training.sharding import maybe_initialize_distributed

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TINY = str(HERE / "tiny.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    drop = ("PDEKIT_TRACEBACK", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
            "JAX_PROCESS_ID", "PDEKIT_DISTRIBUTED")
    out = {k: v for k, v in os.environ.items() if k not in drop}
    return {**out, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
            "JAX_PLATFORMS": "cpu", **extra}


def launch(args: list[str], n: int = 2, devices: int = 2, cache=None) -> list[subprocess.Popen]:
    """``n`` processes of one job running ``python args...``, ``devices`` CPU devices each;
    ``cache``: a JAX compilation cache directory shared by the job's attempts (saves the
    resumed attempt its compilations; the numbers do not depend on it)."""
    port = free_port()
    extra = {} if cache is None else {"JAX_COMPILATION_CACHE_DIR": str(cache),
                                      "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                                      "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    dist = {} if n == 1 else {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                              "JAX_NUM_PROCESSES": str(n)}
    return [subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **dist,
                **({"JAX_PROCESS_ID": str(i)} if n > 1 else {}), **extra)) for i in range(n)]


def finish(procs, timeout: float = 240) -> list[str]:
    """Wait for every process; their outputs (Gloo's connection chatter left out)."""
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        outs.append("\n".join(ln for ln in out.decode().splitlines() if "[Gloo]" not in ln))
    return outs


def steps_saved(run: Path) -> list[int]:
    last = run / "checkpoints" / "last"
    return sorted(int(p.name) for p in last.iterdir() if p.name.isdigit()) if last.exists() else []


def test_two_processes_killed_midway_resume_to_the_four_device_run(ks_files, tmp_path):
    kw = dict(steps=12, log_every=3, valid_every=6, ckpt_every=6, keep_last=2)
    cfg2 = tiny_cfg(ks_files, tmp_path / "p2", **kw)  # validates: best and last save step 6
    cfg4 = tiny_cfg(ks_files, tmp_path / "d4", **{**kw, "ckpt_every": 12})
    cfg4["data"]["valid_path"] = None  # validation does not change the training numbers
    run2, run4 = tmp_path / "p2" / "test" / "default", tmp_path / "d4" / "test" / "default"
    for name, cfg in (("p2", cfg2), ("d4", cfg4)):
        (tmp_path / f"{name}.json").write_text(json.dumps(cfg))

    cache = tmp_path / "jax_cache"
    procs = launch([TINY, str(tmp_path / "p2.json"), "--delay", "0.25"], cache=cache)
    deadline = time.time() + 200
    while not steps_saved(run2):
        assert all(p.poll() is None for p in procs), finish(procs)
        assert time.time() < deadline, "no checkpoint within 200 s"
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    finish(procs)
    killed_at = steps_saved(run2)[-1]
    assert killed_at == 6, killed_at

    ref = launch([TINY, str(tmp_path / "d4.json")], n=1, devices=4)  # alongside the resume
    resumed = launch([TINY, str(tmp_path / "p2.json")], cache=cache)
    outs = finish(resumed) + finish(ref)
    assert all(p.returncode == 0 for p in resumed + ref), outs
    assert f"resuming {run2} from step {killed_at}" in outs[0], outs[0]
    assert "pdekit train:" not in outs[1], outs[1]  # process 1 writes no messages
    assert "on 4 device(s)" in outs[2], outs[2]

    recs2, recs4 = read_metrics(run2), read_metrics(run4)
    assert [r["step"] for r in recs2] == [r["step"] for r in recs4] == [3, 6, 9, 12]
    np.testing.assert_allclose([r["train/loss"] for r in recs2],
                               [r["train/loss"] for r in recs4], rtol=1e-6)
    for ema in (False, True):
        a, b = flat_params(run2, ema=ema), flat_params(run4, ema=ema)
        assert a.keys() == b.keys() and a
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-8, err_msg=(ema, k))
    assert (run2 / "config.yaml").read_text() != ""  # written once, complete


@pytest.mark.parametrize("environ, words", [
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "two",
      "JAX_PROCESS_ID": "0"}, ["JAX_NUM_PROCESSES='two'", "not an integer"]),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2",
      "JAX_PROCESS_ID": "2"}, ["JAX_PROCESS_ID=2", "0..1"]),
])
def test_malformed_distributed_environment_is_one_line(monkeypatch, environ, words):
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError) as err:
        maybe_initialize_distributed()
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)
