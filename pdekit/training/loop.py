"""The training loop: one loop for every model and objective.

:func:`train` validates the config, opens a :class:`~pdekit.training.session.Session` (the data,
the model and the optimiser are checked before the run directory exists), resumes it
(:func:`~pdekit.training.session.resume`), and runs a :class:`StepLoop`. The step loop never
synchronises with the host except every ``log_every`` / ``valid_every`` / ``ckpt_every``
steps, where :meth:`StepLoop.sync` fetches and checks the running loss: a non-finite loss or
gradient norm stops the run before anything non-finite is saved.

With ``train.micro_steps = K > 1`` each jitted call runs ``K`` steps
(:func:`~pdekit.training.state.make_train_step`) on ``K`` batches prefetched as one stacked
batch (:func:`stacked_sampler`); the host sees only every ``K``-th step, and every step count
it stops at (``steps``, the three periods, a time budget's horizon, a stop signal) falls on
such a dispatch boundary.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
from jax.experimental import multihost_utils
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from pdekit._memory import peak_bytes_in_use
from pdekit._mesh import GPU_OVERLAP_FLAGS, add_xla_flags
from pdekit.training.budget import WallClockBudget
from pdekit.training.config import validate
from pdekit.training.data import OnlineBatches, Prefetcher, host_batch_sampler, is_online
from pdekit.training.logs import MetricsLog
from pdekit.training.optim import lr_schedule
from pdekit.training.preemption import StopSignals, TrainingInterrupted
from pdekit.training.resume import acc_from_meta, acc_to_meta, fallback_record
from pdekit.training.session import Session, Start, open_session, resume, say
from pdekit.training.sharding import maybe_initialize_distributed
from pdekit.training.state import init_acc, make_train_step
from pdekit.training.validation import Validator


class NonFiniteLossError(RuntimeError):
    """The loss or gradient became NaN/Inf; the last checkpoint is left as it was."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    finished_before: bool = False  # the run had already finished (train.steps or its time budget)
    metrics: dict = field(default_factory=dict)


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


def stacked_sampler(sample, k: int):
    """``dispatch -> the host batches of steps dispatch*k .. dispatch*k + k-1``, stacked on a
    new leading axis (``sample`` maps a step to its batch)."""
    def stacked(dispatch: int) -> dict:
        parts = [sample(dispatch * k + i) for i in range(k)]
        return {key: np.stack([p[key] for p in parts]) for key in parts[0]}

    return stacked


def _gpu_overlap(cfg) -> None:
    """``train.xla_gpu_overlap``: the XLA flags of :data:`pdekit._mesh.GPU_OVERLAP_FLAGS`,
    which must be set before the backend starts (a warning when it already has)."""
    if cfg.train.xla_gpu_overlap and not add_xla_flags(GPU_OVERLAP_FLAGS):
        print("pdekit train: warning: train.xla_gpu_overlap=true has no effect, a JAX backend "
              f"already started; set XLA_FLAGS='{' '.join(GPU_OVERLAP_FLAGS)}' before it "
              f"(XLA_FLAGS is {os.environ.get('XLA_FLAGS', '')!r})", file=sys.stderr)


def train(cfg: DictConfig | dict, *, data=None) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; see ``docs/training.md``.

    ``data`` may supply ``(train_ds, valid_ds)`` objects with the ``WindowDataset``
    interface instead of opening ``cfg.data`` paths.
    """
    cfg = validate(cfg)
    _gpu_overlap(cfg)
    maybe_initialize_distributed()
    session = open_session(cfg, data)
    start = resume(session)
    if start.finished:
        session.ckpts.close()
        t = cfg.train
        step = start.found.step
        say(f"run {session.run_dir} already finished at step {step} (train.steps={t.steps}"
            f"{f', train.time_budget_s={t.time_budget_s:g}' if t.time_budget_s else ''})")
        return TrainResult(session.run_dir, step, finished_before=True,
                           metrics=start.meta.get("metrics", {}))
    return StepLoop(session, start).run()


class StepLoop:
    """The steps of one attempt at a run, from its start state to its horizon (or a stop).

    :meth:`run` calls the jitted step; every ``log_every`` / ``valid_every`` / ``ckpt_every``
    steps (and at the horizon) :meth:`sync` fetches the running sums, moves a time budget's
    horizon, validates, logs and checkpoints.
    """

    def __init__(self, s: Session, start: Start):
        cfg, t, dp = s.cfg, s.cfg.train, s.dp
        self.s, self.cfg, self.t = s, cfg, t
        self.state, self.meta = start.state, start.meta
        self.start = int(self.state["step"])
        self.k = k = int(t.micro_steps)
        if self.start % k:
            s.ckpts.close()
            raise ValueError(f"the run resumes from step {self.start}, which is not a multiple "
                             f"of train.micro_steps={k}; resume it with the micro_steps it "
                             "was saved with")
        if self.start:
            say(f"resuming {s.run_dir} from step {self.start}")
        else:
            say(f"run {s.run_dir}: {cfg.derived.num_params:,} parameters on {dp.num_devices} "
                "device(s)")
        self.step_fn = make_train_step(
            s.static, s.objective, s.optimizer, lr_schedule(t), ema_decay=float(t.ema_decay),
            ema_warmup=bool(t.ema_warmup), precision=t.precision, replicated=dp.replicated,
            micro_steps=k, grad_reduce=str(t.grad_reduce_dtype))
        self.validator = Validator(s.static, stats=s.train_ds.stats, history=int(cfg.data.history),
                                   future=int(cfg.data.future),
                                   steps=_rollout_steps(cfg, s.valid_ds), dp=dp)
        self.log = MetricsLog(s.run_dir, resume_step=self.start, enabled=jax.process_index() == 0)
        if start.found is not None and start.found.skipped:
            self.log.note(self.start, fallback_record(start.found))
        self.fresh_acc = jax.jit(init_acc, out_shardings=dp.replicated)
        sample = host_batch_sampler(s.train_ds, int(t.batch_size), int(cfg.seed))
        if is_online(s.train_ds):  # data.source=online: made on the devices (training/data.py)
            self.prefetch = OnlineBatches(s.train_ds, int(t.batch_size), self.start // k,
                                          int(t.steps) // k, micro_steps=k)
        elif k == 1:
            self.prefetch = Prefetcher(sample, lambda b: dp.put_local_batch(b, int(t.batch_size)),
                                       self.start, int(t.steps), depth=int(t.prefetch))
        else:  # item i: the stacked batches of steps i*k .. i*k + k-1
            self.prefetch = Prefetcher(stacked_sampler(sample, k),
                                       lambda b: dp.put_local_stack(b, int(t.batch_size)),
                                       self.start // k, int(t.steps) // k, depth=int(t.prefetch))
        self.bar = None
        if t.progress and jax.process_index() == 0:
            self.bar = tqdm(total=int(t.steps), initial=self.start, unit="step",
                            dynamic_ncols=True, file=sys.stderr)
        self.acc = acc_from_meta(self.meta.pop("acc", None), self.fresh_acc, dp)  # preempted sums
        self.horizon = int(jax.device_get(self.state["horizon"]))
        self.budget = WallClockBudget(
            float(t.time_budget_s), int(t.steps), float(self.meta.get("elapsed_s") or 0.0),
            valid_every=int(t.valid_every) if s.valid_ds is not None else 0)
        self.last_sync, self.t_sync, self.wait_sync = self.start, time.perf_counter(), 0.0
        self.record: dict = {}
        self.warned = False

    def _meta_now(self, done: int, finished: bool) -> dict:
        return {**self.meta, "step": done, "metrics": self.record, "horizon": self.horizon,
                "elapsed_s": self.budget.elapsed(), "finished": finished}

    def _due(self, done: int) -> bool:
        t = self.t
        return (done % int(t.log_every) == 0 or done % int(t.valid_every) == 0
                or done % int(t.ckpt_every) == 0 or done >= self.horizon)

    def run(self) -> TrainResult:
        stop = StopSignals(multi_process=jax.process_count() > 1).install()
        ckpts = self.s.ckpts
        try:
            k = self.k
            for i, batch in self.prefetch:  # i: the step (k = 1) or the dispatch (k > 1)
                self.state, self.acc = self.step_fn(self.state, batch, self.acc)
                done = (i + 1) * k
                if self.bar is not None:
                    self.bar.update(k)
                if not self._due(done):
                    if stop.at_step():  # a signal: checkpoint this step with the running sums
                        _save_and_stop(ckpts, self.state, jax.device_get(self.acc), stop.signum,
                                       self.last_sync, self._meta_now(done, False))
                    continue
                finished, meta_now = self.sync(done)
                if finished:
                    break
                if stop.at_sync():
                    _save_and_stop(ckpts, self.state, None, stop.signum, self.last_sync, meta_now)
            ckpts.wait()
        finally:
            stop.restore()
            self.prefetch.close()
            if self.bar is not None:
                self.bar.close()
            self.log.close()
            ckpts.close()
        t, end = self.t, self.last_sync
        why = (f" (time budget {t.time_budget_s:g} s; {self.budget.elapsed():.0f} s used)"
               if self.budget.enabled and end < int(t.steps) else "")
        say(f"finished {self.s.run_dir} at step {end}{why}")
        return TrainResult(self.s.run_dir, end, metrics=self.record)

    def sync(self, done: int) -> tuple[bool, dict]:
        """The host's work at step ``done``: record, horizon, validation, log, checkpoints.
        Returns whether the run is finished and the checkpoint metadata of this step."""
        s, t, budget = self.s, self.t, self.budget
        host = jax.device_get(self.acc)
        _check_finite(host, self.last_sync, done, s.ckpts)
        now = time.perf_counter()
        n = max(int(host["n"]), 1)
        self.record = {
            "train/loss": float(host["loss"]) / n, "train/grad_norm": float(host["gnorm"]) / n,
            "lr": float(host["lr"]),
            "steps_per_s": (done - self.last_sync) / max(now - self.t_sync, 1e-9),
            "data_wait_frac": (self.prefetch.wait_s - self.wait_sync) / max(now - self.t_sync, 1e-9)}
        peak = peak_bytes_in_use()  # this process's peak on its first device so far (not on CPU)
        if peak is not None:
            self.record["peak_bytes_in_use"] = peak
        self.acc = self.fresh_acc()
        if budget.enabled:
            self._move_horizon(done)
            if self.horizon < 2 * int(t.warmup_steps) and not self.warned:
                self.warned = True
                say(f"warning: the time budget ends the run near step {self.horizon}, within "
                    f"2x train.warmup_steps={int(t.warmup_steps)}: the learning rate will "
                    "hardly decay; lower train.warmup_steps")
        finished = done >= self.horizon
        probe = budget.enabled and not budget.timed  # the budget needs a validation's cost
        if s.valid_ds is not None and (done % int(t.valid_every) == 0 or finished or probe):
            self.record.update(_validate_timed(self.validator, self.state, s.valid_ds, self.cfg,
                                               budget, finished))
            if budget.enabled and not finished:  # no room left for another one: end here
                self._move_horizon(done)
                finished = done >= self.horizon
        self.log.write(done, self.record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{self.record['train/loss']:.3e}", refresh=False)
        self._checkpoint(done, finished)
        self.last_sync, self.t_sync, self.wait_sync = done, time.perf_counter(), self.prefetch.wait_s
        return finished, self._meta_now(done, finished)

    def _checkpoint(self, done: int, finished: bool) -> None:
        """``best`` when the validation correlation improved, ``last`` every ``ckpt_every``
        steps and at the end."""
        metric = self.record.get("valid/rollout_corr")
        improved = metric is not None and np.isfinite(metric) and (
            self.meta["best_metric"] is None or metric > self.meta["best_metric"])
        if improved:
            self.meta = {**self.meta, "best_metric": metric, "best_step": done}
        meta_now = self._meta_now(done, finished)
        if improved:
            self.s.ckpts.save(done, self.state, meta_now, which="best")
        if done % int(self.t.ckpt_every) == 0 or finished:
            self.s.ckpts.save(done, self.state, meta_now, which="last")

    def _move_horizon(self, done: int) -> None:
        """Ask the budget for the horizon (the same on every process), rounded down to a
        dispatch boundary (never below ``done``, one); put it in the state."""
        new = _agree(self.budget.horizon(done, self.horizon))
        new -= (new - done) % self.k
        if new != self.horizon:
            self.state = {**self.state,
                          "horizon": jax.device_put(np.int32(new), self.s.dp.replicated)}
            if self.bar is not None:
                self.bar.total = new
        self.horizon = new
        self.record["horizon"] = new


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


def _agree(horizon: int) -> int:
    """Process 0's horizon on every process (clocks differ between hosts)."""
    if jax.process_count() == 1:
        return horizon
    return int(multihost_utils.broadcast_one_to_all(np.int32(horizon)))


def resolved_config_text(cfg) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
