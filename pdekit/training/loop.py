"""The training loop: one loop for every model and objective.

Order of work in :func:`train`: validate the config, open the data, build the model and the
optimiser (all of which can fail on bad input), and only then create or reopen the run
directory, restore the last checkpoint if there is one, and step. The step loop never
synchronises with the host except every ``log_every`` / ``valid_every`` / ``ckpt_every``
steps, where the running loss is fetched and checked: a non-finite loss or gradient norm
stops the run before anything non-finite is saved.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
from omegaconf import DictConfig, OmegaConf

from pdekit._mesh import DataParallel
from pdekit.training.budget import WallClockBudget
from pdekit.training.checkpoint import Checkpoints
from pdekit.training.config import validate
from pdekit.training.data import Prefetcher, cond_ranges, host_batch_sampler, open_data
from pdekit.training.logs import MetricsLog
from pdekit.training.model import abstract_model, abstract_split, count_params, init_model, split
from pdekit.training.objectives import check_objective, make_objective
from pdekit.training.optim import lr_schedule, make_optimizer
from pdekit.training.preemption import StopSignals, TrainingInterrupted
from pdekit.training.resume import (
    acc_from_meta,
    acc_to_meta,
    fallback_record,
    prepare_everywhere,
    restore_latest,
)
from pdekit.training.sharding import maybe_initialize_distributed
from pdekit.training.state import init_acc, init_state, make_train_step
from pdekit.training.validation import Validator


class NonFiniteLossError(RuntimeError):
    """The loss or gradient became NaN/Inf; the last checkpoint is left as it was."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    finished_before: bool = False  # the run had already finished (train.steps or its time budget)
    metrics: dict = field(default_factory=dict)


def derive(cfg: DictConfig, train_ds) -> dict:
    return {"spatial_dims": len(train_ds.spatial_shape), "spatial_shape": list(train_ds.spatial_shape),
            "channels": int(train_ds.channels), "num_cond": int(train_ds.num_cond),
            "num_windows": int(train_ds.num_windows), "devices": jax.device_count(),
            "cond_range": cond_ranges(cfg, train_ds), "pde": str(train_ds.trajectories.pde)}


def _say(msg: str) -> None:
    if jax.process_index() == 0:
        print(f"pdekit train: {msg}", file=sys.stderr)


def _validate_now(validator, state, valid_ds, cfg) -> dict:
    out = {}
    params = state["ema"]
    n = int(cfg.data.valid_batches)
    batches = valid_ds.iter_eval(int(cfg.train.batch_size))
    out["valid/one_step_mse"] = validator.one_step_loss(
        params, (b for i, b in enumerate(batches) if n == 0 or i < n))
    if validator.steps > 0:
        u, cond = valid_ds.full_trajectories(np.arange(min(cfg.data.valid_trajectories,
                                                           int(valid_ds.num_trajectories))))
        corr = validator.rollout_correlation(params, u, cond)
        out["valid/rollout_corr"] = float(np.mean(corr))
        out["valid/rollout_corr_last"] = float(corr[-1])
    return out


def _rollout_steps(cfg, valid_ds) -> int:
    """Model steps that fit in the validation trajectories (after the history frames)."""
    if valid_ds is None:
        return 0
    u, _ = valid_ds.full_trajectories(np.arange(1))
    fit = (u.shape[1] - int(cfg.data.history)) // int(cfg.data.future)
    return max(0, min(int(cfg.data.rollout_steps), fit))


def train(cfg: DictConfig | dict, *, data=None) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; see ``docs/training.md``.

    ``data`` may supply ``(train_ds, valid_ds)`` objects with the ``WindowDataset``
    interface instead of opening ``cfg.data`` paths.
    """
    cfg = validate(cfg)
    maybe_initialize_distributed()
    dp = DataParallel.create()
    t = cfg.train
    dp.check_batch(int(t.batch_size))
    train_ds, valid_ds = open_data(cfg) if data is None else data
    derived = derive(cfg, train_ds)
    key = jax.random.PRNGKey(int(cfg.seed))
    skeleton = abstract_model(cfg, OmegaConf.create(derived), key)  # bad hyperparameters fail here
    check_objective(t.objective, skeleton, str(cfg.model._target_))
    params_abs, static = abstract_split(skeleton)
    cfg.derived = {**derived, "num_params": count_params(params_abs)}
    optimizer = make_optimizer(t)
    objective = make_objective(t, int(cfg.data.future))

    run_dir = prepare_everywhere(cfg, train_ds.stats)
    ckpts = Checkpoints(run_dir / "checkpoints", keep_last=int(t.keep_last))
    init = lambda p: init_state(p, optimizer, int(cfg.seed), int(t.steps))
    state = None
    if static is None or not ckpts.steps("last"):  # the model must be built (or is new)
        model = init_model(cfg, OmegaConf.create(derived), key, dp.replicated, skeleton)
        params, static = split(model)
        state = jax.jit(init, out_shardings=dp.replicated)(params)
    target = state if state is not None else jax.tree.map(  # resume without initialising
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=dp.replicated),
        jax.eval_shape(init, params_abs))
    try:
        found = restore_latest(ckpts, target)
    except BaseException:
        ckpts.close()
        raise
    meta = {"best_metric": None, "best_step": None}
    if found is not None:
        state, meta = found.state, found.meta
        if found.step >= t.steps or meta.get("finished"):
            ckpts.close()
            _say(f"run {run_dir} already finished at step {found.step} (train.steps={t.steps}"
                 f"{f', train.time_budget_s={t.time_budget_s:g}' if t.time_budget_s else ''})")
            return TrainResult(run_dir, found.step, finished_before=True,
                               metrics=meta.get("metrics", {}))
    start = int(state["step"])
    if start:
        _say(f"resuming {run_dir} from step {start}")
    else:
        _say(f"run {run_dir}: {cfg.derived.num_params:,} parameters on {dp.num_devices} device(s)")

    step_fn = make_train_step(static, objective, optimizer, lr_schedule(t), ema_decay=float(t.ema_decay),
                              ema_warmup=bool(t.ema_warmup),
                              precision=t.precision, replicated=dp.replicated)
    validator = Validator(static, stats=train_ds.stats, history=int(cfg.data.history),
                          future=int(cfg.data.future), steps=_rollout_steps(cfg, valid_ds), dp=dp)
    log = MetricsLog(run_dir, resume_step=start, enabled=jax.process_index() == 0)
    if found is not None and found.skipped:
        log.note(start, fallback_record(found))
    fresh_acc = jax.jit(init_acc, out_shardings=dp.replicated)
    prefetch = Prefetcher(host_batch_sampler(train_ds, int(t.batch_size), int(cfg.seed)),
                          lambda b: dp.put_local_batch(b, int(t.batch_size)),
                          start, int(t.steps), depth=int(t.prefetch))
    bar = None
    if t.progress and jax.process_index() == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(t.steps), initial=start, unit="step", dynamic_ncols=True,
                   file=sys.stderr)
    acc = acc_from_meta(meta.pop("acc", None), fresh_acc, dp)  # a preempted step's sums
    log_every, valid_every, ckpt_every, total = (
        int(t.log_every), int(t.valid_every), int(t.ckpt_every), int(t.steps))
    horizon = int(jax.device_get(state["horizon"]))
    budget = WallClockBudget(float(t.time_budget_s), total, float(meta.get("elapsed_s") or 0.0),
                             valid_every=valid_every if valid_ds is not None else 0)
    last_sync, t_sync, wait_sync = start, time.perf_counter(), 0.0
    record: dict = {}
    warned = False
    stop = StopSignals(multi_process=jax.process_count() > 1).install()
    try:
        for step, batch in prefetch:
            state, acc = step_fn(state, batch, acc)
            done = step + 1
            if bar is not None:
                bar.update(1)
            sync = (done % log_every == 0 or done % valid_every == 0
                    or done % ckpt_every == 0 or done >= horizon)
            if not sync:
                if stop.at_step():  # a signal: checkpoint this step with the running sums
                    _save_and_stop(ckpts, state, jax.device_get(acc), stop.signum, last_sync, {
                        **meta, "step": done, "metrics": record, "horizon": horizon,
                        "elapsed_s": budget.elapsed(), "finished": False})
                continue
            host = jax.device_get(acc)
            _check_finite(host, last_sync, done, ckpts)
            now = time.perf_counter()
            n = max(int(host["n"]), 1)
            record = {"train/loss": float(host["loss"]) / n, "train/grad_norm": float(host["gnorm"]) / n,
                      "lr": float(host["lr"]),
                      "steps_per_s": (done - last_sync) / max(now - t_sync, 1e-9),
                      "data_wait_frac": (prefetch.wait_s - wait_sync) / max(now - t_sync, 1e-9)}
            acc = fresh_acc()
            if budget.enabled:
                horizon, state = _move_horizon(budget, done, horizon, state, dp, bar)
                record["horizon"] = horizon
                if horizon < 2 * int(t.warmup_steps) and not warned:
                    warned = True
                    _say(f"warning: the time budget ends the run near step {horizon}, within "
                         f"2x train.warmup_steps={int(t.warmup_steps)}: the learning rate will "
                         "hardly decay; lower train.warmup_steps")
            finished = done >= horizon
            probe = budget.enabled and not budget.timed  # the budget needs a validation's cost
            if valid_ds is not None and (done % valid_every == 0 or finished or probe):
                record.update(_validate_timed(validator, state, valid_ds, cfg, budget, finished))
                if budget.enabled and not finished:  # no room left for another one: end here
                    horizon, state = _move_horizon(budget, done, horizon, state, dp, bar)
                    record["horizon"] = horizon
                    finished = done >= horizon
            log.write(done, record)
            if bar is not None:
                bar.set_postfix(loss=f"{record['train/loss']:.3e}", refresh=False)
            metric = record.get("valid/rollout_corr")
            improved = metric is not None and np.isfinite(metric) and (
                meta["best_metric"] is None or metric > meta["best_metric"])
            if improved:
                meta = {**meta, "best_metric": metric, "best_step": done}
            meta_now = {**meta, "step": done, "metrics": record, "horizon": horizon,
                        "elapsed_s": budget.elapsed(), "finished": finished}
            if improved:
                ckpts.save(done, state, meta_now, which="best")
            if done % ckpt_every == 0 or finished:
                ckpts.save(done, state, meta_now, which="last")
            last_sync, t_sync, wait_sync = done, time.perf_counter(), prefetch.wait_s
            if finished:
                break
            if stop.at_sync():
                _save_and_stop(ckpts, state, None, stop.signum, last_sync, meta_now)
        ckpts.wait()
    finally:
        stop.restore()
        prefetch.close()
        if bar is not None:
            bar.close()
        log.close()
        ckpts.close()
    end = last_sync
    why = (f" (time budget {t.time_budget_s:g} s; {budget.elapsed():.0f} s used)"
           if budget.enabled and end < total else "")
    _say(f"finished {run_dir} at step {end}{why}")
    return TrainResult(run_dir, end, metrics=record)


def _check_finite(host_acc: dict, last_sync: int, done: int, ckpts) -> None:
    if not bool(host_acc["finite"]):
        raise NonFiniteLossError(
            f"non-finite loss or gradient between steps {last_sync + 1} and {done}; "
            f"stopped, last good checkpoint: step {ckpts.latest_step('last')}")


def _save_and_stop(ckpts, state, host_acc, signum: int, last_sync: int, meta: dict):
    """After a stop signal: checkpoint step ``meta["step"]`` (with the loss sums since the
    last synchronisation, so that the resumed run logs the same records), wait for the
    write, and raise :class:`TrainingInterrupted`."""
    done = int(meta["step"])
    extra = {"preempted": int(signum)}
    if host_acc is not None:
        _check_finite(host_acc, last_sync, done, ckpts)
        extra["acc"] = acc_to_meta(host_acc)
    ckpts.save(done, state, {**meta, **extra}, which="last")
    ckpts.wait()
    raise TrainingInterrupted(signum, done)


def _validate_timed(validator, state, valid_ds, cfg, budget, finished) -> dict:
    """Validate; under a time budget, also tell the budget what it cost. The first
    validation of an attempt compiles, so unless it closes the run it is run once more, warm,
    to time what the next ones (the closing one included) will cost."""
    t0 = time.perf_counter()
    out = _validate_now(validator, state, valid_ds, cfg)
    if budget.enabled:
        t1, warm = time.perf_counter(), None
        if not budget.timed and not finished:
            _validate_now(validator, state, valid_ds, cfg)
            warm = time.perf_counter() - t1
        budget.validated(time.perf_counter() - t0, warm)
    return out


def _move_horizon(budget, done, horizon, state, dp, bar):
    """Ask the budget for the horizon (the same on every process) and put it in the state."""
    new = _agree(budget.horizon(done, horizon))
    if new != horizon:
        state = {**state, "horizon": jax.device_put(np.int32(new), dp.replicated)}
        if bar is not None:
            bar.total = new
    return new, state


def _agree(horizon: int) -> int:
    """Process 0's horizon on every process (clocks differ between hosts)."""
    if jax.process_count() == 1:
        return horizon
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(horizon)))


def resolved_config_text(cfg) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
