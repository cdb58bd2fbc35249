"""``train.micro_steps`` (K optimiser steps per jitted dispatch) and
``train.grad_reduce_dtype`` (the data-parallel gradient all-reduce done by hand).

K = 4 trains what K = 1 trains, to float32 round-off (not bitwise: XLA:CPU lays out a
convolution inside the scan's loop body differently from one at the top level, so its sums
differ in the last bits); a K = 4 run stopped by SIGTERM between two records resumes bitwise
to the uninterrupted one; a bad K is refused in one line; 4 simulated CPU devices (one subprocess, run alongside) equal one
device with micro-steps on (XLA's all-reduce and the explicit float32 one), and within
bfloat16 round-off with the explicit bfloat16 all-reduce.

``python test_microsteps.py SPEC.json`` is the subprocess: it trains each config of the
spec (the test reads their run directories) and prints the ``XLA_FLAGS`` it ended with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_cfg
from test_distributed import env
from test_preemption import SignalAt  # data-bound (0.05 s a batch): the loop waits for data
from tiny import flat_params, open_wrapped

from pdekit._mesh import add_xla_flags
from pdekit.training import train
from pdekit.training.config import validate
from pdekit.training.logs import read_metrics
from pdekit.training.preemption import TrainingInterrupted

HERE = Path(__file__).resolve().parent
#: every step count a multiple of 4 (and 2); no validation split (it does not change the
#: training numbers, and saves each run a validator compilation)
KW = dict(steps=24, log_every=8, valid_every=12, ckpt_every=12)


def _cfg(files, root, **train):
    cfg = tiny_cfg(files, root, **{**KW, **train})
    cfg["data"]["valid_path"] = None
    return cfg


def _losses(run: Path) -> list[float]:
    return [r["train/loss"] for r in read_metrics(run)]


def _run(root: Path) -> Path:
    return Path(root) / "test" / "default"


@pytest.fixture(scope="module")
def four_devices(ks_files, tmp_path_factory):
    """The 4-device subprocess, started before the in-process runs and joined by the test
    that reads it: (process, {name: run directory})."""
    root = tmp_path_factory.mktemp("d4")
    runs = {"auto_k2": dict(micro_steps=2),
            "f32_k2": dict(micro_steps=2, grad_reduce_dtype="float32", xla_gpu_overlap=True),
            "bf16": dict(grad_reduce_dtype="bfloat16", precision="bf16")}
    spec = {name: _cfg(ks_files, root / name, **kw) for name, kw in runs.items()}
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, __file__, str(root / "spec.json")], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env=env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu"))
    yield proc, {name: _run(root / name) for name in runs}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def k1(ks_files, tmp_path_factory, four_devices):
    """The K = 1, one-device reference runs: fp32 and bf16."""
    root = tmp_path_factory.mktemp("k1")
    train(_cfg(ks_files, root / "fp32"))
    train(_cfg(ks_files, root / "bf16", precision="bf16"))
    return {"fp32": _run(root / "fp32"), "bf16": _run(root / "bf16")}


def test_four_micro_steps_equal_one_and_resume_exactly_after_a_preemption(ks_files, tmp_path, k1):
    full = _run(tmp_path / "full")
    assert train(_cfg(ks_files, tmp_path / "full", micro_steps=4)).step == 24
    np.testing.assert_allclose(_losses(full), _losses(k1["fp32"]), rtol=1e-6)
    for ema in (False, True):
        a, b = flat_params(full, ema=ema), flat_params(k1["fp32"], ema=ema)
        assert a.keys() == b.keys() and a
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7, err_msg=(ema, key))

    cfg = _cfg(ks_files, tmp_path / "stopped", micro_steps=4)
    run = _run(tmp_path / "stopped")
    train_ds, _ = open_wrapped(cfg)
    with pytest.raises(TrainingInterrupted) as stop:  # step 17 is in the dispatch of 16..19
        train(cfg, data=(SignalAt(train_ds._ds, 17, signal.SIGTERM), None))
    # the prefetcher reads ahead, so the dispatch running when batch 17 is read depends on
    # the machine's load: the stop is at a dispatch boundary at or before 20 (20: mid-interval,
    # its sums saved), and the records are the sync points (log 8, 16; checkpoint 12) up to it
    stopped = stop.value.step
    assert stopped % 4 == 0 and 8 <= stopped <= 20, stopped
    assert [r["step"] for r in read_metrics(run)] == [s for s in (8, 12, 16) if s <= stopped]
    assert train(cfg, data=open_wrapped(cfg)).step == 24  # record 24 sums steps 17..24
    timing = ("steps_per_s", "data_wait_frac", "peak_bytes_in_use")
    assert [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(run)] == \
           [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(full)]
    for ema in (False, True):
        a, b = flat_params(run, ema=ema), flat_params(full, ema=ema)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), ema


@pytest.mark.parametrize("edit, words", [
    ({"micro_steps": 0}, ["train.micro_steps", ">= 1"]),
    ({"micro_steps": 4, "steps": 22}, ["train.steps=22", "train.micro_steps=4"]),
    ({"micro_steps": 4, "log_every": 6}, ["train.log_every=6", "multiple of 4"]),
    ({"micro_steps": 4, "valid_every": 10}, ["train.valid_every=10"]),
    ({"micro_steps": 3, "ckpt_every": 8, "log_every": 3, "valid_every": 6, "steps": 24},
     ["train.ckpt_every=8", "train.micro_steps=3"]),
    ({"grad_reduce_dtype": "bf16"}, ["train.grad_reduce_dtype", "bfloat16"]),
    ({"grad_reduce_dtype": "bfloat16"}, ["train.grad_reduce_dtype=bfloat16", "train.precision=bf16"]),
])
def test_bad_micro_steps_and_grad_reduce_fail_with_one_line(tmp_path, edit, words):
    cfg = _cfg({"train": "a.h5", "valid": None}, tmp_path)
    cfg["train"].update(edit)
    with pytest.raises(ValueError) as err:
        validate(cfg)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_xla_flags_are_added_only_before_the_backend_starts(monkeypatch):
    jax.devices()  # a backend runs (before it, the subprocess below shows them added)
    monkeypatch.setenv("XLA_FLAGS", "--xla_a=1")
    assert add_xla_flags(["--xla_a=2"])  # already named: the user's value stays, nothing to do
    assert not add_xla_flags(["--xla_a=2", "--xla_b=1"])  # too late for --xla_b
    assert os.environ["XLA_FLAGS"] == "--xla_a=1"


def test_four_cpu_devices_equal_one_with_micro_steps_and_explicit_reduce(k1, four_devices):
    proc, runs = four_devices
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert out.count("on 4 device(s)") == 3, out
    assert "--xla_gpu_enable_latency_hiding_scheduler=true" in out  # set, and CPU still runs
    ref = flat_params(k1["fp32"])
    for name in ("auto_k2", "f32_k2"):  # float32: the summation order of the all-reduce only
        np.testing.assert_allclose(_losses(runs[name]), _losses(k1["fp32"]), rtol=1e-5)
        got = flat_params(runs[name])
        for key in ref:
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-7, err_msg=name)
    # bfloat16 (with bf16 compute): each device's gradient is rounded to bf16 (8 significant
    # bits: spacing 2**-8 = 4e-3 relative) before the sum, on top of a bf16 forward and
    # backward whose batch sums are grouped per device. The runs may differ by about one bf16
    # rounding of the weights: measured 1.7e-3 of a leaf's largest weight (4 devices with
    # XLA's all-reduce: the same) and 2e-4 in the losses; the bounds leave a 3x and 10x margin
    np.testing.assert_allclose(_losses(runs["bf16"]), _losses(k1["bf16"]), rtol=2e-3)
    ref = flat_params(k1["bf16"])
    got = flat_params(runs["bf16"])
    for key in ref:
        scale = np.abs(ref[key]).max()
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=5e-3 * scale, err_msg=key)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    for cfg in spec.values():
        train(cfg)
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}")


if __name__ == "__main__":
    main(sys.argv[1])
