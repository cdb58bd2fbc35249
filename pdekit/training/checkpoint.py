"""Orbax checkpoints of the training state: the last ``k`` and the best by validation metric.

Two managers under ``<run>/checkpoints/``: ``last/`` (every ``ckpt_every`` steps and at the
end, ``max_to_keep=k``) and ``best/`` (one checkpoint, replaced when the validation rollout
metric improves). Each checkpoint holds the state pytree and a small JSON ``meta``. Orbax
writes to a temporary directory and renames it when complete, so a killed process never
leaves a half-written checkpoint that a restore would pick up.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


def _manager(path: Path, keep: int, read_only: bool) -> ocp.CheckpointManager:
    # ``read_only`` managers (load_run) neither create nor clean anything up.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else keep, create=not read_only,
        cleanup_tmp_directories=not read_only)
    return ocp.CheckpointManager(path, options=options)


def abstract(state):
    """Shape/dtype/sharding skeleton of ``state``, the restore target."""
    def one(x):
        return x if isinstance(x, jax.ShapeDtypeStruct) else ocp.utils.to_shape_dtype_struct(x)

    return jax.tree.map(one, state)


class Checkpoints:
    """The ``last`` and ``best`` checkpoint managers of one run."""

    def __init__(self, directory: str | Path, keep_last: int = 2, read_only: bool = False):
        root = Path(directory).absolute()
        self.last = _manager(root / "last", keep_last, read_only)
        self.best = _manager(root / "best", 1, read_only)

    def _pick(self, which: str) -> ocp.CheckpointManager:
        if which not in ("last", "best"):
            raise ValueError(f"which must be 'last' or 'best', got {which!r}")
        return self.last if which == "last" else self.best

    def latest_step(self, which: str = "last") -> int | None:
        return self._pick(which).latest_step()

    def save(self, step: int, state, meta: dict, which: str = "last") -> None:
        mgr = self._pick(which)
        if mgr.latest_step() == step:
            return
        mgr.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

    def restore(self, target_state, which: str = "last", step: int | None = None):
        """Restore (state, meta) into the shardings of ``target_state``; ``None`` if empty."""
        mgr = self._pick(which)
        step = mgr.latest_step() if step is None else step
        if step is None:
            return None
        out = mgr.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract(target_state)), meta=ocp.args.JsonRestore()))
        return out["state"], dict(out["meta"])

    def read_meta(self, which: str = "last", step: int | None = None) -> dict:
        mgr = self._pick(which)
        step = mgr.latest_step() if step is None else step
        if step is None:
            return {}
        out = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(out["meta"])

    def wait(self) -> None:
        self.last.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.last.close()
        self.best.close()
