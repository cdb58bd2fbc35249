"""Orbax checkpoints of the training state: the last ``k`` and the best by validation metric.

Two managers under ``<run>/checkpoints/``: ``last/`` (every ``ckpt_every`` steps and at the
end, ``max_to_keep=k``) and ``best/`` (one checkpoint, replaced when the validation rollout
metric improves). Each checkpoint holds the state pytree and a small JSON ``meta``. Orbax
writes to a temporary directory and renames it when complete, so a killed process never
leaves a half-written checkpoint that a restore would pick up.

Online data (``data.source=online``) are not saved: ``meta["online"]`` records the buffer's
counters at the step (:attr:`Checkpoints.annotate`), from which a resume rebuilds it.

Integrity: ``meta["checksum"]`` records every state leaf's shape, dtype and CRC-32 of its
bytes. A restore checks the leaves' shapes against the target, that they are finite and that
their checksums match (:func:`verify`). :meth:`Checkpoints.restore_intact` walks back from
the newest checkpoint to the newest one that passes; a checkpoint that fails is moved
aside to ``checkpoints/corrupt/`` by :meth:`Checkpoints.quarantine`. A read-only
:class:`Checkpoints` (``load_run``, ``pdekit evaluate``) never falls back: the checkpoint
it was asked for is restored intact or :class:`CheckpointError` says why not.
"""

from __future__ import annotations

import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from pdekit.training.sharding import all_true, barrier, is_primary

WHICH = ("last", "best")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or fails verification (one-line message)."""


def _manager(path: Path, keep: int, read_only: bool, which: str) -> ocp.CheckpointManager:
    # ``read_only`` managers (load_run) neither create nor clean anything up. Each manager
    # gets its own barrier names: ``best`` and ``last`` may save the same step at once.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else keep, create=not read_only,
        cleanup_tmp_directories=not read_only,
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            barrier_sync_key_prefix=f"pdekit_{which}"))
    return ocp.CheckpointManager(path, options=options)


def abstract(state):
    """Shape/dtype/sharding skeleton of ``state``, the restore target."""
    def one(x):
        return x if isinstance(x, jax.ShapeDtypeStruct) else ocp.utils.to_shape_dtype_struct(x)

    return jax.tree.map(one, state)


def _host(x) -> np.ndarray:
    """This process's full copy of a leaf (state leaves are replicated on every process)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


def _leaves(tree) -> list[tuple[str, object]]:
    return [(jax.tree_util.keystr(p), x) for p, x in jax.tree_util.tree_leaves_with_path(tree)]


def checksums(state) -> dict:
    """``{leaf path: {"shape", "dtype", "crc32"}}`` of every leaf of ``state``."""
    out = {}
    for path, x in _leaves(state):
        a = np.ascontiguousarray(_host(x))
        out[path] = {"shape": list(a.shape), "dtype": str(a.dtype),
                     "crc32": zlib.crc32(a.reshape(-1).view(np.uint8))}
    return out


def verify(state, meta: dict, target) -> str | None:
    """``None`` when ``state`` matches ``target``'s shapes, is finite and matches the
    checksums stored in ``meta`` (checkpoints written before checksums skip that part);
    otherwise what is wrong, in a few words."""
    expected = {p: (tuple(x.shape), np.dtype(x.dtype)) for p, x in _leaves(target)}
    got = dict(_leaves(state))
    if set(got) != set(expected):
        return f"its leaves differ from the model's ({len(got)} vs {len(expected)})"
    for path, x in got.items():
        if (tuple(x.shape), np.dtype(x.dtype)) != expected[path]:
            return f"{path} has shape {tuple(x.shape)}, the model needs {expected[path][0]}"
    stored = meta.get("checksum")
    if stored is not None:
        if not isinstance(stored, dict) or set(stored) != set(got):
            return "its checksum record does not list the state's leaves"
        for path, rec in checksums(state).items():
            if rec != stored[path]:
                return f"the checksum of {path} does not match the one written with the step"
    for path, x in got.items():
        if np.issubdtype(np.dtype(x.dtype), np.inexact) and not np.all(np.isfinite(_host(x))):
            return f"{path} holds NaN or Inf"
    return None


def _part_meta(meta: dict, part: str) -> dict:
    """``meta`` with its checksum record cut to the leaves of ``state[part]``."""
    stored = meta.get("checksum")
    if not isinstance(stored, dict):
        return meta
    prefix = jax.tree_util.keystr((jax.tree_util.DictKey(part),))
    return {**meta, "checksum": {k: v for k, v in stored.items() if k.startswith(prefix)}}


_DROPPED = {"last": 0.0}  # when the filter below last dropped a report


def _filter_aborted_reads() -> None:
    """Install (once) an unraisable-exception hook that drops the reports of tensorstore
    callbacks reaching orbax's closed asyncio loop, which a failed restore leaves behind
    (Python prints each as a traceback: hundreds of lines). Anything else goes to the
    previous hook."""
    if getattr(sys.unraisablehook, "pdekit_quiet", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        err = unraisable.exc_value
        if isinstance(err, RuntimeError) and str(err) == "Event loop is closed":
            _DROPPED["last"] = time.monotonic()
        else:
            previous(unraisable)

    hook.pdekit_quiet = True
    sys.unraisablehook = hook


def _drain_aborted_reads() -> None:
    """After a failed restore, wait until those reports stop arriving (at most 2 s), so that
    none is left to be printed at exit."""
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        time.sleep(0.05)
        if time.monotonic() - max(_DROPPED["last"], start) > 0.25:
            break


def _why(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass
class Restored:
    """The newest intact checkpoint and the newer ones that failed: ``[(step, why)]``."""

    step: int
    state: object
    meta: dict
    skipped: list[tuple[int, str]] = field(default_factory=list)


class Checkpoints:
    """The ``last`` and ``best`` checkpoint managers of one run."""

    def __init__(self, directory: str | Path, keep_last: int = 2, read_only: bool = False,
                 annotate=None):
        self.root = Path(directory).absolute()
        self.read_only = read_only
        #: ``step -> dict`` merged into the meta of every checkpoint saved (the online data's
        #: counters, ``{"online": ...}``), or ``None``
        self.annotate = annotate
        self.last = _manager(self.root / "last", keep_last, read_only, "last")
        self.best = _manager(self.root / "best", 1, read_only, "best")

    def _pick(self, which: str) -> ocp.CheckpointManager:
        if which not in WHICH:
            raise ValueError(f"which must be 'last' or 'best', got {which!r}")
        return self.last if which == "last" else self.best

    def latest_step(self, which: str = "last") -> int | None:
        return self._pick(which).latest_step()

    def steps(self, which: str = "last") -> list[int]:
        return sorted(self._pick(which).all_steps())

    def save(self, step: int, state, meta: dict, which: str = "last") -> None:
        """Save ``state`` with ``meta`` (plus :attr:`annotate`'s record of ``step`` and the
        state's checksums) as ``which/step``."""
        mgr = self._pick(which)
        if mgr.latest_step() == step:
            return
        extra = self.annotate(int(step)) if self.annotate is not None else {}
        meta = {**meta, **extra, "checksum": checksums(state)}
        mgr.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

    def _try(self, mgr, step: int, target):
        """``(state, meta, None)`` for an intact ``step``, else ``(None, None, why)``; the
        verdict is the same on every process (a failure anywhere fails everywhere)."""
        state = meta = why = None
        _filter_aborted_reads()
        try:
            out = mgr.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract(target)), meta=ocp.args.JsonRestore()))
            state, meta = out["state"], out["meta"]
            if not isinstance(meta, dict):
                why = "its meta is not a JSON object"
            else:
                why = verify(state, meta, target)
        except Exception as err:  # orbax/tensorstore raise many types for damaged files
            why = _why(err)
            _drain_aborted_reads()
        if not all_true(why is None) and why is None:
            why = "another process could not restore it"
        return (state, dict(meta), None) if why is None else (None, None, why)

    def problem(self, target, which: str, step: int) -> str | None:
        """What is wrong with checkpoint ``which/step`` restored into ``target``, or ``None``."""
        return self._try(self._pick(which), step, target)[2]

    def restore_intact(self, target, which: str = "last", step: int | None = None,
                       fallback: bool | None = None) -> Restored | None:
        """The newest checkpoint of ``which`` that passes :func:`verify` (``None`` if there is
        none at all). With ``step``, or with ``fallback=False`` (the default when read-only),
        only that step or the newest one is tried. Raises :class:`CheckpointError` when no
        tried checkpoint is intact."""
        mgr = self._pick(which)
        fallback = (not self.read_only) if fallback is None else fallback
        steps = self.steps(which)
        if step is not None:
            if step not in steps:
                raise CheckpointError(f"no checkpoint {which}/{step} in {self.root}")
            steps = [step]
        elif not fallback:
            steps = steps[-1:]
        if not steps:
            return None
        skipped = []
        for s in reversed(steps):
            state, meta, why = self._try(mgr, s, target)
            if why is None:
                return Restored(s, state, meta, skipped)
            skipped.append((s, why))
        tried = "; ".join(f"{which}/{s}: {why}" for s, why in skipped)
        raise CheckpointError(f"no intact checkpoint in {self.root / which} ({tried})")

    def restore_part(self, target_state, which: str, part: str):
        """``(state[part], step)`` of the newest ``which`` checkpoint (``None`` if there is
        none), reading only that part (``"ema"`` or ``"params"`` for evaluation; the
        optimiser state stays on disk: its leaves are orbax placeholders). Verified like a full
        restore (shapes, finite values, the part's stored checksums); a failure raises
        :class:`CheckpointError` (no fallback). On an orbax without placeholders the whole
        state is read."""
        steps = self.steps(which)
        if not steps:
            return None
        step = steps[-1]
        skip = getattr(ocp, "PLACEHOLDER", None)
        if skip is None:  # an orbax without placeholders
            found = self.restore_intact(target_state, which, step)
            return found.state[part], step
        item = {k: abstract(v) if k == part else jax.tree.map(lambda _: skip, v)
                for k, v in target_state.items()}
        restore_args = {k: ocp.checkpoint_utils.construct_restore_args(v) if k == part else v
                        for k, v in item.items()}
        _filter_aborted_reads()
        why = None
        try:
            out = self._pick(which).restore(step, args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(item=item, restore_args=restore_args),
                meta=ocp.args.JsonRestore()))
            got, meta = out["state"][part], out["meta"]
            why = (verify({part: got}, _part_meta(meta, part), {part: target_state[part]})
                   if isinstance(meta, dict) else "its meta is not a JSON object")
        except Exception as err:  # orbax/tensorstore raise many types for damaged files
            why = _why(err)
            _drain_aborted_reads()
        if why is not None:
            raise CheckpointError(f"no intact checkpoint in {self.root / which} "
                                  f"({which}/{step}: {why})")
        return got, step

    def restore(self, target_state, which: str = "last", step: int | None = None):
        """Restore (state, meta) into the shardings of ``target_state``; ``None`` if empty.
        Raises :class:`CheckpointError` when the checkpoint fails verification."""
        found = self.restore_intact(target_state, which, step)
        return None if found is None else (found.state, found.meta)

    def quarantine(self, which: str, steps) -> list[Path]:
        """Move the checkpoints ``which/<step>`` aside to ``corrupt/<which>-<step>`` (process
        0 moves, every process waits) so that no save or restore sees them again."""
        moved = []
        dest = self.root / "corrupt"
        if is_primary():
            for s in steps:
                src = self.root / which / str(s)
                if not src.exists():
                    continue
                dest.mkdir(parents=True, exist_ok=True)
                target, n = dest / f"{which}-{s}", 1
                while target.exists():
                    target, n = dest / f"{which}-{s}.{n}", n + 1
                src.rename(target)
                moved.append(target)
        barrier(f"pdekit_quarantine_{which}")
        self._pick(which).reload()
        return moved

    def read_meta(self, which: str = "last", step: int | None = None) -> dict:
        mgr = self._pick(which)
        step = mgr.latest_step() if step is None else step
        if step is None:
            return {}
        try:
            out = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except Exception as err:  # a damaged or missing meta/
            raise CheckpointError(f"cannot read {self.root / which / str(step)}/meta: "
                                  f"{_why(err)}") from None
        return dict(out["meta"])

    def wait(self) -> None:
        self.last.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.last.close()
        self.best.close()
