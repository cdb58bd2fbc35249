"""Setting up and resuming a run: everything :func:`pdekit.training.train` does before its
first step.

:func:`open_session` validates what can fail on bad input (the data, the model's
hyperparameters through an abstract build, the optimiser) before the run directory exists,
then creates or reopens it (locked, checked against the saved config). :func:`resume`
restores the newest intact checkpoint, or initialises the model when there is none.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import optax
from omegaconf import DictConfig, OmegaConf

from pdekit._mesh import DataParallel
from pdekit.training.checkpoint import Checkpoints
from pdekit.training.data import cond_ranges, is_online, open_data
from pdekit.training.model import abstract_model, abstract_split, count_params, init_model, split
from pdekit.training.objectives import check_objective, make_objective
from pdekit.training.optim import make_optimizer
from pdekit.training.resume import prepare_everywhere, restore_latest
from pdekit.training.state import init_state


def say(msg: str) -> None:
    """One line on stderr from process 0."""
    if jax.process_index() == 0:
        print(f"pdekit train: {msg}", file=sys.stderr)


def derive(cfg: DictConfig, train_ds) -> dict:
    """Facts measured from the training data, stored as the run's ``derived``. For online
    data they are the calibration batch's (``num_windows``: the buffer's)."""
    pde = train_ds.pde if is_online(train_ds) else train_ds.trajectories.pde
    return {"spatial_dims": len(train_ds.spatial_shape), "spatial_shape": list(train_ds.spatial_shape),
            "channels": int(train_ds.channels), "num_cond": int(train_ds.num_cond),
            "num_windows": int(train_ds.num_windows), "devices": jax.device_count(),
            "cond_range": cond_ranges(cfg, train_ds), "pde": str(pde)}


@dataclass
class Session:
    """A validated run: its config, data, model parts, optimiser and open run directory."""

    cfg: DictConfig
    dp: DataParallel
    train_ds: Any
    valid_ds: Any
    derived: dict
    key: jax.Array
    skeleton: Any
    params_abs: Any
    static: Any  # None when the model holds non-trainable arrays only a real init provides
    optimizer: optax.GradientTransformation
    objective: Any
    run_dir: Path
    ckpts: Checkpoints

    def init(self, params) -> dict:
        """A fresh training state for ``params``."""
        return init_state(params, self.optimizer, int(self.cfg.seed), int(self.cfg.train.steps))


def open_session(cfg: DictConfig, data=None) -> Session:
    """Check everything that bad input can break, then create or reopen the run directory."""
    dp = DataParallel.create()
    t = cfg.train
    dp.check_batch(int(t.batch_size))
    train_ds, valid_ds = open_data(cfg, dp) if data is None else data
    derived = derive(cfg, train_ds)
    key = jax.random.PRNGKey(int(cfg.seed))
    skeleton = abstract_model(cfg, OmegaConf.create(derived), key)  # bad hyperparameters fail here
    check_objective(t.objective, skeleton, str(cfg.model._target_))
    params_abs, static = abstract_split(skeleton)
    cfg.derived = {**derived, "num_params": count_params(params_abs)}
    optimizer = make_optimizer(t)
    objective = make_objective(t, int(cfg.data.future))
    run_dir = prepare_everywhere(cfg, train_ds.stats)
    # online data: each checkpoint records the buffer's counters at its step (resume checks them)
    ckpts = Checkpoints(run_dir / "checkpoints", keep_last=int(t.keep_last),
                        annotate=_online_record(train_ds))
    return Session(cfg, dp, train_ds, valid_ds, derived, key, skeleton, params_abs, static,
                   optimizer, objective, run_dir, ckpts)


def _online_record(train_ds):
    """``step -> {"online": counters}`` for online data, else ``None``."""
    if not is_online(train_ds):
        return None
    return lambda step: {"online": train_ds.counters(step)}


@dataclass
class Start:
    """Where the step loop starts: the state, the checkpoint metadata and what was restored."""

    state: dict
    meta: dict
    found: Any  # the restored checkpoint (resume.Restored) or None for a new run
    finished: bool  # the restored run had already finished


def resume(s: Session) -> Start:
    """Restore the newest intact checkpoint (building the model only when a resume cannot do
    without it) or initialise a new run. Closes the checkpoints on failure."""
    state = None
    if s.static is None or not s.ckpts.steps("last"):  # the model must be built (or is new)
        model = init_model(s.cfg, OmegaConf.create(s.derived), s.key, s.dp.replicated,
                           s.skeleton)
        params, s.static = split(model)
        state = jax.jit(s.init, out_shardings=s.dp.replicated)(params)
    target = state if state is not None else jax.tree.map(  # resume without initialising
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s.dp.replicated),
        jax.eval_shape(s.init, s.params_abs))
    try:
        found = restore_latest(s.ckpts, target, s.ckpts.annotate)
    except BaseException:
        s.ckpts.close()
        raise
    if found is None:
        return Start(state, {"best_metric": None, "best_step": None}, None, False)
    t = s.cfg.train
    finished = found.step >= t.steps or bool(found.meta.get("finished"))
    return Start(found.state, found.meta, found, finished)
