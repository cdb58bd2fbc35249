"""Opening a run for training: its directory on every process, and the checkpoint to resume.

:func:`prepare_everywhere` prepares the run directory on process 0 first (it creates, locks
and writes) and then checks it on the others, so that a refusal on any process stops every
process with the same one-line error instead of leaving the rest waiting in a collective.

:func:`restore_latest` restores the newest *intact* ``last`` checkpoint
(:meth:`pdekit.training.checkpoint.Checkpoints.restore_intact`). Newer ones that fail
verification are moved to ``checkpoints/corrupt/``, a one-line warning names them, and
:func:`fallback_record` is what the loop writes to ``metrics.jsonl`` about it. A damaged
``best`` checkpoint is moved aside the same way (the run saves a new one at its next
improvement). No intact ``last`` checkpoint at all is an error: the run is not restarted
over work it cannot read.

Online data (``data.source=online``) are not in a checkpoint: the source rebuilds its buffer
at the restored step from the seed and the schedule, and :func:`check_record` first checks the
counters the checkpoint recorded against the schedule's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

from pdekit.training.checkpoint import CheckpointError, Checkpoints, Restored
from pdekit.training.run import prepare_run_dir
from pdekit.training.sharding import all_true, is_primary

#: Keys of a checkpoint's meta that describe that one checkpoint, not the run.
_PER_CHECKPOINT = ("checksum", "acc", "preempted", "online")


def _say(msg: str) -> None:
    if is_primary():
        print(f"pdekit train: {msg}", file=sys.stderr)


def _attempt(fn):
    try:
        return fn(), None
    except (ValueError, OSError) as err:  # bad input, a held lock, ...: one line, exit 2
        return None, err


def prepare_everywhere(cfg, stats) -> Path:
    """:func:`pdekit.training.run.prepare_run_dir` on process 0, then on the others."""
    path, err = _attempt(lambda: prepare_run_dir(cfg, stats)) if is_primary() else (None, None)
    if not all_true(err is None):
        raise err or ValueError("process 0 could not prepare the run directory (its error "
                                "is on its stderr)")
    if not is_primary():
        path, err = _attempt(lambda: prepare_run_dir(cfg, stats))
    if not all_true(err is None):
        raise err or ValueError("another process could not prepare the run directory")
    return path


def _list(skipped) -> str:
    return "; ".join(f"step {s}: {why}" for s, why in skipped)


def restore_latest(ckpts: Checkpoints, target, record=None) -> Restored | None:
    """The newest intact ``last`` checkpoint restored into ``target`` (``None``: none saved).

    Damaged newer checkpoints are quarantined with a warning (``Restored.skipped``); a
    damaged ``best`` too. Raises :class:`CheckpointError` when no ``last`` one is intact.
    ``record`` (``step -> dict``, the online data's :attr:`Checkpoints.annotate`): the
    checkpoint's own record must equal it at its step (:func:`check_record`).
    """
    if not ckpts.steps("last"):
        return None
    try:
        found = ckpts.restore_intact(target, "last")
    except CheckpointError as err:
        raise CheckpointError(f"{err}; move {ckpts.root / 'last'} aside to start the run "
                              "afresh") from None
    if found.skipped:
        ckpts.quarantine("last", [s for s, _ in found.skipped])
        _say(f"warning: damaged checkpoint(s) moved to {ckpts.root / 'corrupt'} ("
             f"{_list(found.skipped)}); resuming from step {found.step}")
    _check_best(ckpts, target)
    if record is not None:
        check_record(found, record(found.step))
    found.meta = {k: v for k, v in found.meta.items() if k not in _PER_CHECKPOINT} | (
        {"acc": found.meta["acc"]} if "acc" in found.meta else {})
    return found


def check_record(found: Restored, expected: dict) -> None:
    """Online data are rebuilt, not restored: the buffer's counters a checkpoint recorded
    (``meta["online"]``: trajectories generated, refreshes) must be the ones the current
    ``data.online.*`` give at its step, or the resumed run would train on other data."""
    for key, want in expected.items():
        saved = found.meta.get(key)
        if saved is not None and saved != want:
            raise ValueError(f"checkpoint step {found.step} records {key} counters {saved}, "
                             f"but data.online.* give {want} at that step; resume with the "
                             "settings it was saved with")


def _check_best(ckpts: Checkpoints, target) -> None:
    if not ckpts.steps("best"):
        return
    step = ckpts.latest_step("best")
    why = ckpts.problem(target, "best", step)
    if why is not None:
        ckpts.quarantine("best", [step])
        _say(f"warning: the best checkpoint (step {step}) is damaged ({why}); moved to "
             f"{ckpts.root / 'corrupt'}, the next improvement saves a new one")


def fallback_record(found: Restored) -> dict:
    """The ``metrics.jsonl`` fields that say a resume skipped damaged checkpoints."""
    return {"event": "checkpoint_fallback", "resumed_from": int(found.step),
            "skipped": [{"step": int(s), "reason": why} for s, why in found.skipped]}


def acc_to_meta(host_acc: dict) -> dict:
    """A host copy of the loss accumulator as JSON (float32 values are exact in JSON)."""
    return {k: (bool(v) if np.asarray(v).dtype == np.bool_ else
                int(v) if np.issubdtype(np.asarray(v).dtype, np.integer) else float(v))
            for k, v in host_acc.items()}


def acc_from_meta(saved: dict, fresh, dp):
    """The accumulator saved by a preempted step, placed like ``fresh()``'s; ``fresh()`` when
    the checkpoint holds none or one of another layout."""
    like = jax.eval_shape(fresh)
    if not isinstance(saved, dict) or set(saved) != set(like):
        return fresh()
    return dp.put_global({k: np.asarray(saved[k], like[k].dtype) for k in like})
