"""Damaged checkpoints and metrics files: verification, fallback with a warning, refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import tiny_cfg
from tiny import flat_params

from pdekit.configs import compose
from pdekit.evaluation.jobs import evaluate
from pdekit.training import load_run, train
from pdekit.training.checkpoint import CheckpointError, checksums, verify
from pdekit.training.logs import MetricsLog, read_metrics

KW = dict(steps=12, log_every=4, valid_every=12, ckpt_every=4, keep_last=3)


@pytest.fixture(scope="module")
def pristine(ks_files, tmp_path_factory):
    """A finished run (last/{4,8,12}, best/12), a copy of it and its final parameters."""
    root = tmp_path_factory.mktemp("integrity")
    cfg = tiny_cfg(ks_files, root / "runs", **KW)
    train(cfg)
    run = root / "runs" / "test" / "default"
    shutil.copytree(run, root / "backup")
    return cfg, run, root / "backup", {e: flat_params(run, ema=e) for e in (False, True)}


@pytest.fixture
def fresh(pristine):
    """The pristine run directory, restored before each test."""
    cfg, run, backup, params = pristine
    shutil.rmtree(run)
    shutil.copytree(backup, run)
    return cfg, run, params


def data_files(ckpt: Path) -> list[Path]:
    """The files of array data (``d/`` of orbax's OCDBT stores) of a checkpoint."""
    return [p for p in (ckpt / "state").rglob("*") if p.is_file() and p.parent.name == "d"]


def truncate(ckpt: Path) -> None:
    for f in data_files(ckpt):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def garble(ckpt: Path) -> None:
    for f in data_files(ckpt):
        data = bytearray(f.read_bytes())
        mid = len(data) // 2
        data[mid: mid + 8] = bytes(b ^ 0x5A for b in data[mid: mid + 8])
        f.write_bytes(bytes(data))


def drop_meta(ckpt: Path) -> None:
    shutil.rmtree(ckpt / "meta")


def junk_meta(ckpt: Path) -> None:
    (ckpt / "meta" / "metadata").write_bytes(b"\x00{not json")


def wrong_checksum(ckpt: Path) -> None:
    """Bytes that decode cleanly but differ from those written (what a checksum is for)."""
    path = ckpt / "meta" / "metadata"
    meta = json.loads(path.read_text())
    leaf = next(iter(meta["checksum"].values()))
    leaf["crc32"] ^= 1
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, words", [
    (truncate, ["DATA_LOSS", "OUT_OF_RANGE"]),  # tensorstore's own checks
    (garble, ["DATA_LOSS"]),
    (drop_meta, ['"meta" was not found']),
    (junk_meta, ["JSONDecodeError"]),
    (wrong_checksum, ["the checksum of ['ema']", "does not match the one written with the step"]),
])
def test_each_kind_of_damage_is_detected(fresh, damage, words):
    _, run, _ = fresh
    damage(run / "checkpoints" / "last" / "12")
    with pytest.raises(CheckpointError) as err:
        load_run(run, which="last")  # read-only: the newest checkpoint or an error
    msg = str(err.value)
    assert "\n" not in msg and "last/12:" in msg and any(w in msg for w in words), msg


def test_damaged_newest_checkpoint_falls_back_and_ends_identical(fresh, capsys):
    cfg, run, params = fresh
    garble(run / "checkpoints" / "last" / "12")
    res = train(cfg)
    assert res.step == 12 and not res.finished_before
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if "damaged checkpoint" in ln]
    assert len(warning) == 1 and "step 12:" in warning[0] and "resuming from step 8" in warning[0]
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert (run / "checkpoints" / "corrupt" / "last-12").is_dir()
    events = [r for r in read_metrics(run) if r.get("event")]
    assert len(events) == 1 and events[0]["event"] == "checkpoint_fallback"
    assert events[0]["step"] == events[0]["resumed_from"] == 8
    assert [s["step"] for s in events[0]["skipped"]] == [12]
    assert [r["step"] for r in read_metrics(run) if not r.get("event")] == [4, 8, 12]
    for ema in (False, True):  # the re-run of steps 9-12 rebuilt what was damaged
        now = flat_params(run, ema=ema)
        assert all(np.array_equal(now[k], params[ema][k]) for k in params[ema])


def test_no_intact_checkpoint_refuses_in_one_line(fresh):
    cfg, run, _ = fresh
    for step in (4, 8, 12):
        garble(run / "checkpoints" / "last" / str(step))
    with pytest.raises(CheckpointError) as err:
        train(cfg)
    msg = str(err.value)
    assert "\n" not in msg and "no intact checkpoint" in msg and "aside" in msg
    assert all(f"last/{s}:" in msg for s in (4, 8, 12)), msg
    assert sorted(p.name for p in (run / "checkpoints" / "last").iterdir()) == ["12", "4", "8"]


def test_load_run_and_evaluate_refuse_a_damaged_checkpoint(fresh, capsys):
    _, run, params = fresh
    garble(run / "checkpoints" / "best" / "12")
    with pytest.raises(CheckpointError) as err:
        load_run(run, which="best")
    assert "best/12" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError) as err:  # `pdekit evaluate`: this line, exit 2
        evaluate(compose("evaluate", [f"run={run}", "split=valid", "plots=false",
                                      "baseline.enabled=false"]))
    assert not (run / "eval").exists()
    assert str(err.value).startswith("no intact checkpoint") and "best/12" in str(err.value)
    assert "\n" not in str(err.value).strip()
    garble(run / "checkpoints" / "last" / "12")  # read-only loading never falls back
    with pytest.raises(CheckpointError, match="last/12"):
        load_run(run, which="last")
    shutil.rmtree(run / "checkpoints" / "last" / "12")
    shutil.rmtree(run / "checkpoints" / "best")
    model, _, _ = load_run(run, which="best")  # no best: the last intact one (step 8)
    assert model is not None


def test_load_run_reads_the_weights_only(fresh, monkeypatch):
    """Evaluation restores the EMA (or raw) weights alone: every optimiser-state leaf of the
    restore request is an orbax placeholder, and the weights equal the training's."""
    _, run, params = fresh
    requested = []
    real = ocp.args.PyTreeRestore

    def spy(*args, **kwargs):
        requested.append(kwargs["item"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ocp.args, "PyTreeRestore", spy)
    for ema in (True, False):
        got = flat_params(run, ema=ema)
        assert got.keys() == params[ema].keys()
        for k, v in params[ema].items():
            np.testing.assert_array_equal(got[k], v)
        item, part = requested[-1], "ema" if ema else "params"
        skipped = [x for k in item if k != part for x in jax.tree.leaves(item[k])]
        assert skipped and all(x is ocp.PLACEHOLDER for x in skipped)
        assert not any(x is ocp.PLACEHOLDER for x in jax.tree.leaves(item[part]))


def test_verify_names_what_is_wrong():
    state = {"params": {"w": jnp.ones((3, 2))}, "step": jnp.int32(5)}
    meta = {"checksum": checksums(state)}
    assert verify(state, meta, state) is None
    assert verify(state, {}, state) is None  # written before checksums: shapes and finiteness
    bad = {**state, "params": {"w": jnp.ones((3, 2)).at[1, 1].set(2.0)}}
    assert "checksum of ['params']['w']" in verify(bad, meta, state)
    nan = {**state, "params": {"w": jnp.full((3, 2), jnp.nan)}}
    assert "NaN or Inf" in verify(nan, {}, state)
    assert "shape (3, 2)" in verify(state, meta, {**state, "params": {"w": jnp.ones((2, 2))}})


def test_metrics_with_bad_bytes_are_repaired_and_read(tmp_path, capsys):
    good = [json.dumps({"step": s, "train/loss": 1.0 / s}).encode() for s in (4, 8, 12)]
    (tmp_path / "metrics.jsonl").write_bytes(
        b"\n".join([good[0], b"\xff\xfe\x00 garbage", b"[1, 2]", good[1], good[2],
                    b'{"step": 1']))  # the last line was cut by a kill
    assert [r["step"] for r in read_metrics(tmp_path)] == [4, 8, 12]
    MetricsLog(tmp_path, resume_step=8).close()
    assert "dropped 2 unreadable line(s)" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_bytes() == good[0] + b"\n" + good[1] + b"\n"
