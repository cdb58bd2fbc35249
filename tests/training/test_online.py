"""data.source=online: the solver's stream, its determinism, its equality with a file, resume.

Tiny KS protocol (solved at N = 64, stored at 32, 16 kept frames). The solver compiles once
per process and chunk size (chunks of 4 here), shared with ``pdekit generate``'s files below.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TOY
from test_distributed import env

from pdekit.configs import package_dir
from pdekit.data import WindowDataset, build_protocol, generate_dataset, open_trajectories
from pdekit.data.online import OnlineSettings, OnlineSource, Schedule
from pdekit.training import train
from pdekit.training.config import validate
from pdekit.training.data import open_data
from pdekit.training.logs import read_metrics
from pdekit.training.preemption import TrainingInterrupted

HERE = Path(__file__).resolve().parent
STRIDE = 2


def tiny_pde() -> dict:
    """The KS preset at N = 64 -> 32 with 40 frames on [0, ~10], the last 16 kept."""
    pde = yaml.safe_load((package_dir() / "pde" / "ks.yaml").read_text())
    pde.update(solve_resolution=64, resolution=32)
    split = {"frames": 40, "keep": 16, "final_time": [9.0, 11.0]}
    pde["splits"] = {s: {"num_trajectories": 8, **split} for s in ("train", "valid")}
    return pde


def source(normalization="zscore", **online) -> OnlineSource:
    settings = OnlineSettings(**{"buffer_size": 4, "refresh_count": 4, "refresh_every": 3,
                                 **online})
    return OnlineSource(build_protocol(tiny_pde(), "train"), settings, history=1, future=1,
                        stride=STRIDE, cond_keys=("dt", "dx"), window_seed=0,
                        normalization=normalization)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """``pdekit generate``'s train (8 and 4 trajectories) and valid (4) files of tiny_pde."""
    d = tmp_path_factory.mktemp("online")
    out = {}
    for name, split, n in (("train", "train", 8), ("train4", "train", 4), ("valid", "valid", 4)):
        out[name] = str(d / f"{name}.h5")
        generate_dataset({"pde": tiny_pde(), "split": split, "num_trajectories": n,
                          "output": out[name], "seed": 0, "batch_size": 4, "overwrite": False,
                          "precision": "float32", "solve_precision": "float64",
                          "progress": False})
    return out


def online_cfg(files: dict, root, *, name="default", online=None, **train) -> dict:
    t = dict(steps=12, batch_size=8, lr=3e-3, warmup_steps=2, ema_decay=0.9, log_every=4,
             valid_every=6, ckpt_every=4, progress=False, prefetch=2)
    t.update(train)
    return {"seed": 0, "run": {"root": str(root), "experiment": "online", "name": name},
            "data": {"train_path": files["train"], "valid_path": files["valid"], "history": 1,
                     "future": 1, "stride": STRIDE, "cond_keys": ["dt", "dx"],
                     "valid_trajectories": 2, "rollout_steps": 4, "valid_batches": 2,
                     "source": "online",
                     "online": {"buffer_size": 4, "refresh_count": 4, "refresh_every": 3,
                                **(online or {})}},
            "train": t, "model": dict(TOY), "pde": tiny_pde()}


def test_schedule_cycles_over_a_finite_total():
    sch = Schedule(buffer_size=4, refresh_count=2, refresh_every=5, total=6)
    assert sch.slot_items(0).tolist() == [0, 1, 2, 3]
    assert sch.slot_items(10).tolist() == [4, 5, 6, 7]  # two refreshes of 2
    assert sch.trajectory(sch.slot_items(10)).tolist() == [4, 5, 0, 1]
    assert sch.counters(10) == {"generated": 8, "refreshes": 2, "distinct": 6}
    assert Schedule(4, 2, 5, total=4).refreshes(100) == 0  # the buffer is the whole set


def test_the_stream_is_pdekit_generates_whatever_the_buffer(files):
    with open_trajectories(files["train"]) as tr:
        u_file = np.asarray(tr.u[:])
    for buffer, step, first in ((4, 0, 0), (4, 3, 4), (8, 0, 0)):  # step 3: one refresh
        traj, u, cond = source(buffer_size=buffer).buffer_at(step)
        assert traj.tolist() == list(range(first, first + buffer))
        assert np.array_equal(u, u_file[traj]), (buffer, step)


@pytest.fixture(scope="module", autouse=True)
def four_devices(tmp_path_factory):
    """The stream on 4 simulated CPU devices, dumped by a subprocess started first, so that it
    compiles while the tests of this process run; ``(process, output file)``."""
    out = tmp_path_factory.mktemp("d4") / "d4.npz"
    proc = subprocess.Popen([sys.executable, str(HERE / "test_online.py"), "--dump", str(out)],
                            env=env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc, out
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_four_devices_give_the_same_stream_and_batches(four_devices):
    proc, out = four_devices
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    four, one = np.load(out), dump_stream()
    assert four["devices"] == 4 and one["devices"] == 1
    for k in one:
        if k != "devices":
            assert np.array_equal(four[k], one[k]), k


def dump_stream() -> dict:
    src = source(buffer_size=8)
    traj, u, cond = src.buffer_at(7)
    batches = [src.batch(s, 8) for s in range(5, 8)]  # a refresh at step 6
    return {"traj": traj, "u": u, "cond": cond, "devices": len(src.dp.mesh.devices.flat),
            **{f"{k}{i}": np.asarray(b[k]) for i, b in enumerate(batches) for k in b}}


def test_a_finite_total_is_the_file_in_another_order(files):
    ds = WindowDataset(files["train"], history=1, future=1, stride=STRIDE)
    src = source(buffer_size=8, total=8)  # the whole set: calibration = all 8 trajectories
    for name in ("mean", "std", "diff_mean", "diff_std"):
        np.testing.assert_allclose(getattr(src.stats, name), getattr(ds.stats, name),
                                   rtol=1e-10, err_msg=name)
    np.testing.assert_array_equal(src.cond, ds.cond)
    # one epoch of the online run holds every window of the file once, as a file epoch does
    # (raw fields: XLA's CPU division is a multiplication by the reciprocal, numpy's is not)
    raw = source(buffer_size=8, total=8, normalization="none")
    assert raw.num_windows == ds.num_windows
    online = [raw.batch(s, 8) for s in range(raw.num_windows // 8)]
    ref = WindowDataset(files["train"], history=1, future=1, stride=STRIDE, stats=raw.stats)

    def rows(batches):
        flat = np.concatenate([np.concatenate(
            [np.asarray(b[k]).reshape(len(b["cond"]), -1) for k in ("u_in", "u_out", "cond")],
            axis=1) for b in batches])
        return flat[np.lexsort(flat.T[::-1])]

    assert np.array_equal(rows(online), rows([ref.batch_of(np.arange(ref.num_windows))]))
    # a smaller buffer cycles over the same 8 trajectories
    small = source(buffer_size=4, total=8)
    seen = {int(t) for s in (0, 3, 6, 9) for t in small.buffer_at(s)[0]}
    assert seen == set(range(8))


class SignalAt:
    """An online source that sends this process ``signum`` once the batch of ``step`` is made."""

    def __init__(self, src, step: int, signum: int):
        self._src, self._at, self._signum = src, step, signum

    def __getattr__(self, name):
        return getattr(self._src, name)

    def batch(self, step, batch_size):
        out = self._src.batch(step, batch_size)
        if step == self._at:
            os.kill(os.getpid(), self._signum)
        return out


def flat(run: Path) -> dict:
    from tiny import flat_params

    return {e: flat_params(run, ema=e) for e in (False, True)}


#: The run both tests below compare against: 150 steps, a refresh of 4 every 5 steps.
RUN = dict(steps=150, log_every=50, valid_every=150, ckpt_every=50, lr=1e-2, warmup_steps=5)
BUFFER = {"buffer_size": 8, "refresh_count": 4, "refresh_every": 5}


@pytest.fixture(scope="module")
def reference(files, tmp_path_factory):
    """The uninterrupted online run (its result and directory)."""
    return train(online_cfg(files, tmp_path_factory.mktemp("ref"), online=BUFFER, **RUN))


def test_interrupted_then_resumed_is_bitwise_the_uninterrupted_run(files, tmp_path, reference):
    cfg = online_cfg(files, tmp_path, online=BUFFER, **RUN)
    train_ds, valid_ds = open_data(validate(cfg))
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, data=(SignalAt(train_ds, 61, signal.SIGINT), valid_ds))
    assert stop.value.step == 62  # mid refresh period (refreshes at 60 and 65)
    run = tmp_path / "online" / "default"
    meta = json.loads((run / "checkpoints" / "last" / "62" / "meta" / "metadata").read_text())
    assert meta["online"] == {"generated": 8 + 4 * 12, "refreshes": 12, "distinct": 56}
    assert train(cfg).step == 150  # a new source: its buffer is rebuilt at step 62
    timing = ("steps_per_s", "data_wait_frac", "peak_bytes_in_use")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(run)]
    assert strip == [{k: v for k, v in r.items() if k not in timing}
                     for r in read_metrics(reference.run_dir)]
    a, b = flat(run), flat(reference.run_dir)
    for e in a:
        for k in a[e]:
            assert np.array_equal(a[e][k], b[e][k]), (e, k)


def test_online_beats_a_four_trajectory_file_at_equal_steps(files, tmp_path, reference):
    cfg = online_cfg(files, tmp_path, **RUN)
    cfg["data"].update(source="file", train_path=files["train4"])
    fixed = train(cfg)
    loss = {"online": reference.metrics["valid/one_step_mse"],
            "file": fixed.metrics["valid/one_step_mse"]}
    assert loss["online"] < loss["file"], loss


def test_an_unstable_solve_fails_at_start_with_pdekit_generates_error():
    pde = tiny_pde()
    pde["splits"]["train"]["final_time"] = [90.0, 110.0]  # 40 frames: a step of 2.6
    pde["inner_steps"] = 1
    with pytest.raises(ValueError, match=r"the solver produced non-finite values in trajectories "
                       r"\[0\]: the time step is too large; raise pde.inner_steps \(now 1\)"):
        OnlineSource(build_protocol(pde, "train"), OnlineSettings(buffer_size=4, refresh_count=4),
                     history=1, future=1, stride=STRIDE, cond_keys=("dt", "dx"), window_seed=0)


@pytest.mark.parametrize("args, words", [
    (["pde=ks", "data.online.total=4"], "data.online.buffer_size=8 exceeds data.online.total=4"),
    (["pde=ks", "data.online.refresh_count=9"],
     "data.online.refresh_count=9 exceeds data.online.buffer_size=8"),
    (["pde=ks", "data.source=disk"], "data.source must be one of ('file', 'online'), got 'disk'"),
    ([], "data.source=online needs the preset of the PDE to solve: add pde=<name>"),
    (["pde=ks", "pde.inner_steps=0"], "pde.inner_steps must be >= 1"),  # pdekit generate's check
])
def test_bad_config_is_one_line_exit_2_and_nothing_written(capsys, tmp_path, args, words):
    from pdekit.cli.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["data.source=online", "data.valid_path=null", "data.online.buffer_size=8",
              "data.online.refresh_count=4", f"run.root={tmp_path / 'runs'}", *args])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == f"pdekit train: error: {err[21:]}", err
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "runs").exists()


if __name__ == "__main__":  # `python test_online.py --dump OUT.npz`: dump_stream() to OUT
    np.savez(sys.argv[sys.argv.index("--dump") + 1], **dump_stream())
