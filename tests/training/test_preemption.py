"""SIGTERM / SIGINT: a checkpoint at the next step boundary, exit 128 + signum, exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_cfg
from test_distributed import env, finish, launch
from tiny import Wrapped, flat_params, open_wrapped

from pdekit.training import train
from pdekit.training.logs import read_metrics
from pdekit.training.preemption import TrainingInterrupted

HERE = Path(__file__).resolve().parent
TIMING = ("steps_per_s", "data_wait_frac", "peak_bytes_in_use")  # wall-clock and allocator fields, never reproducible
KW = dict(steps=20, log_every=5, valid_every=10, ckpt_every=10, keep_last=3)


@pytest.fixture(scope="module")
def reference(ks_files, tmp_path_factory) -> Path:
    """The uninterrupted run that the interrupted ones must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    train(tiny_cfg(ks_files, root, **KW))
    return root / "test" / "default"


def same_records(a: Path, b: Path) -> None:
    ra, rb = read_metrics(a), read_metrics(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        assert {k: v for k, v in x.items() if k not in TIMING} == \
               {k: v for k, v in y.items() if k not in TIMING}, (x, y)


def same_params(a: Path, b: Path) -> None:
    for ema in (False, True):
        pa, pb = flat_params(a, ema=ema), flat_params(b, ema=ema)
        assert pa.keys() == pb.keys() and pa
        for k in pa:
            assert np.array_equal(pa[k], pb[k]), (ema, k)


def test_sigterm_checkpoints_the_next_step_exits_143_and_resumes_exactly(ks_files, tmp_path,
                                                                        reference):
    cfg = tiny_cfg(ks_files, tmp_path / "term", **KW)
    run = tmp_path / "term" / "test" / "default"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, str(HERE / "tiny.py"), str(tmp_path / "cfg.json"),
                             "--delay", "0.05"], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 200
    while not read_metrics(run):  # the first record (step 5): training is under way
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(0.12)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 143, err
    assert "SIGTERM received; saving a checkpoint at the next step boundary" in err
    stopped = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert 5 < stopped < 20, stopped
    saved = sorted(int(p.name) for p in (run / "checkpoints" / "last").iterdir())
    assert saved[-1] == stopped, saved

    resumed = train(cfg, data=open_wrapped(cfg))
    assert resumed.step == 20 and not resumed.finished_before
    same_records(run, reference)
    same_params(run, reference)


class SignalAt(Wrapped):
    """Sends this process ``signum`` once the (slow) batch of ``step`` is ready: the loop is
    then waiting for that batch, so it stops right after step ``step`` (1-based: step + 1)."""

    def __init__(self, ds, step: int, signum: int):
        super().__init__(ds, delay=0.05)  # data-bound: the loop always waits for the batch
        self._at, self._signum = step, signum

    def sample_batch(self, step, batch_size, **kw):
        batch = super().sample_batch(step, batch_size, **kw)
        if step == self._at:
            os.kill(os.getpid(), self._signum)
        return batch


def test_sigint_mid_interval_saves_the_running_sums_and_resumes_exactly(ks_files, tmp_path,
                                                                        reference):
    cfg = tiny_cfg(ks_files, tmp_path, **KW)
    run = tmp_path / "test" / "default"
    train_ds, valid_ds = open_wrapped(cfg)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, data=(SignalAt(train_ds._ds, 6, signal.SIGINT), valid_ds))
    assert (stop.value.step, stop.value.exit_code) == (7, 130)  # between records 5 and 10
    assert signal.getsignal(signal.SIGINT) is before
    assert sorted(int(p.name) for p in (run / "checkpoints" / "last").iterdir()) == [7]
    assert [r["step"] for r in read_metrics(run)] == [5]

    assert train(cfg, data=open_wrapped(cfg)).step == 20
    same_records(run, reference)  # record 10 sums steps 6-10 across the interruption
    same_params(run, reference)


@pytest.mark.slow  # two two-process jobs (~40 s on 2 cores); the fast tests above cover one
def test_two_processes_stop_together_when_one_is_signalled(ks_files, tmp_path):
    kw = dict(steps=30, log_every=5, valid_every=30, ckpt_every=30)
    cfg = tiny_cfg(ks_files, tmp_path / "p2", **kw)
    run = tmp_path / "p2" / "test" / "default"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    args = [str(HERE / "tiny.py"), str(tmp_path / "cfg.json")]
    procs = launch([*args, "--delay", "0.1"], cache=tmp_path / "cache")
    while not read_metrics(run):
        assert all(p.poll() is None for p in procs), finish(procs)
        time.sleep(0.02)
    procs[0].send_signal(signal.SIGTERM)  # process 1 is not signalled
    outs = finish(procs)
    assert [p.returncode for p in procs] == [143, 143], outs
    stopped = int(outs[0].split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert stopped % 5 == 0 and stopped < 30  # several processes stop at a synchronisation
    resumed = launch(args, cache=tmp_path / "cache")
    outs = finish(resumed)
    assert all(p.returncode == 0 for p in resumed), outs
    (tmp_path / "ref.json").write_text(json.dumps(tiny_cfg(ks_files, tmp_path / "ref", **kw)))
    ref = launch([str(HERE / "tiny.py"), str(tmp_path / "ref.json")], cache=tmp_path / "cache")
    outs = finish(ref)
    assert all(p.returncode == 0 for p in ref), outs
    same_records(run, tmp_path / "ref" / "test" / "default")
    same_params(run, tmp_path / "ref" / "test" / "default")
