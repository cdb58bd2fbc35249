"""Evaluate a model (and the numerical baseline) on a trajectory split.

Glue between data, rollout and metrics: loads the split at the model stride, rolls the
model out from the first ``history`` frames, denormalises, and summarises every metric.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from pdekit._memory import peak_bytes_in_use
from pdekit.data import WindowDataset
from pdekit.evaluation import metrics as M
from pdekit.evaluation.baseline import run_baseline
from pdekit.evaluation.checks import finite_or_raise
from pdekit.evaluation.flow import FlowFields, field_names, flow_fields
from pdekit.evaluation.pipeline import compute_metrics, summarize_metrics, summarize_spread
from pdekit.evaluation.rollout import rollout_samples
from pdekit.models.base import is_stochastic


@dataclasses.dataclass
class EvalData:
    """A split at the model stride: normalised and physical fields, conditioning, times."""

    path: Path
    pde: str
    u_norm: np.ndarray  # (B, T', C, *S) normalised
    u: np.ndarray  # (B, T', C, *S) physical
    cond: np.ndarray  # (B, P)
    dt: np.ndarray  # (B,) model step
    t_start: np.ndarray  # (B,) time of the last input frame
    params: dict[str, np.ndarray]
    history: int
    future: int
    stats: object
    fingerprint: str | None = None  # :func:`data_fingerprint` of the reference as stored
    fields: tuple[str, ...] | None = None  # channel names (the file's ``fields`` attribute)

    @property
    def spatial_dims(self) -> int:
        return self.u.ndim - 3

    @property
    def flow(self) -> FlowFields | None:
        """Where the 2D flow's vorticity (or velocity) is, from ``fields``; None otherwise."""
        return flow_fields(self.fields, self.spatial_dims)

    @property
    def domain_length(self) -> np.ndarray:
        """``params/L`` per trajectory (2 pi when the file records none)."""
        n = self.u.shape[0]
        return np.asarray(self.params["L"], np.float64) if "L" in self.params else np.full(n, 2 * np.pi)

    @property
    def horizon(self) -> int:
        """Model steps available in the reference after the input window."""
        return self.u.shape[1] - self.history


def data_fingerprint(u) -> str:
    """Short fingerprint of a reference array: sha256 of its float32 C-order bytes followed by
    its shape, first 16 hex digits."""
    return _fingerprint([u], np.shape(u))


def _fingerprint(parts: Iterable, shape) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part, np.float32).tobytes())
    h.update(repr(tuple(int(n) for n in shape)).encode())
    return h.hexdigest()[:16]


def load_eval_data(path, *, stats, history: int, future: int, stride: int,
                   cond_keys: Sequence[str], max_trajectories: int | None = None) -> EvalData:
    """Read a split once, as stored (physical fields), and normalise it for the model with the
    training run's ``stats`` (``u_norm``; the metrics use ``u``, the stored values).

    ``fingerprint`` is :func:`data_fingerprint` of the evaluated trajectories as stored in the
    file (every saved frame, before normalisation), so it depends neither on the run's
    statistics nor on its stride: reports of different models on the same data share it.
    Non-finite stored fields, conditioning or time steps raise a one-line ``ValueError``.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"evaluation data {path} does not exist")
    # the window dataset gives the conditioning table and the model step; no field is read
    ds = WindowDataset(path, history=history, future=future, stride=stride,
                       cond_keys=tuple(cond_keys), stats=stats, ram_budget_bytes=0)
    try:
        tr = ds.trajectories
        n = ds.num_trajectories if not max_trajectories else min(int(max_trajectories), ds.num_trajectories)
        idx = np.arange(n)
        stored = np.asarray(tr.u[:n], np.float32)  # every saved frame, read once
        u = np.ascontiguousarray(stored[:, ::stride])
        if u.shape[1] <= history:
            raise ValueError(f"{path}: {u.shape[1]} frames at stride {stride} leave no "
                             f"step after a history of {history}")
        bad = np.flatnonzero(~np.isfinite(stored.reshape(n, -1)).all(axis=1))
        if bad.size:
            raise ValueError(f"{path}: non-finite values (NaN/Inf) in u of {bad.size} of {n} "
                             f"trajectories (first: {bad[0]}); refusing to evaluate on them")
        fp = data_fingerprint(stored)
        cond = ds.cond[idx]
        t = np.asarray(tr.t[()], np.float64)
        first = (history - 1) * stride
        t_start = (t[idx, first] if t.ndim == 2 else np.full(n, t[first]))
        params = {k: np.asarray(v)[idx] for k, v in tr.params.items()
                  if np.ndim(v) >= 1 and np.shape(v)[0] == tr.num_trajectories}
        finite_or_raise("the conditioning (params)", cond, path)
        finite_or_raise("the time step (params/dt)", ds.model_dt[idx], path)
        u_norm = np.asarray(stats.normalize(u), np.float32)  # the model's view of the same data
        return EvalData(path=Path(path), pde=tr.pde, u_norm=u_norm, u=u, cond=np.asarray(cond),
                        dt=np.asarray(ds.model_dt[idx], np.float64), t_start=t_start,
                        params=params, history=history, future=future, stats=stats,
                        fingerprint=fp, fields=field_names(tr.attrs.get("fields")))
    finally:
        ds.close()


def _timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def evaluate_model(model, data: EvalData, *, rollout_steps: int | None = None,
                   num_samples: int = 1, seed: int = 0, steps=None, time_rollout: bool = True,
                   bootstrap_resamples: int = 1000) -> tuple[dict, dict]:
    """Roll ``model`` out on ``data`` and summarise the metrics.

    Returns ``(summary, arrays)``: the JSON-ready summary (see
    :func:`pdekit.evaluation.pipeline.summarize_metrics`, plus ``uncertainty`` for stochastic
    models with ``num_samples > 1`` and ``timing``) and the physical ``pred``/``ref`` arrays
    for plots. For stochastic models (:func:`pdekit.models.is_stochastic`) the headline
    metrics use sample 0; its keys are those of training's validation when ``seed=0``.
    """
    rollout_steps = int(rollout_steps or data.horizon)
    if rollout_steps < 1:
        raise ValueError(f"rollout_steps must be >= 1, got {rollout_steps}")
    model = eqx.nn.inference_mode(model)
    stochastic = is_stochastic(model)
    samples = max(1, int(num_samples)) if stochastic else 1
    u0 = data.u_norm[:, : data.history]
    key = jax.random.PRNGKey(seed)
    run = lambda: rollout_samples(model, u0, data.cond, rollout_steps, future=data.future, key=key,
                                  num_samples=samples)
    pred_norm, first_s = _timed(run)
    wall = _timed(run)[1] if time_rollout else first_s
    pred = np.asarray(data.stats.denormalize(pred_norm), np.float32)  # (S, B, T, C, *S)
    raw = compute_metrics(pred[0], data.u, data.dt, history=data.history,
                          spatial_dims=data.spatial_dims, flow=data.flow,
                          domain_length=data.domain_length)
    summary = summarize_metrics(raw, data.dt, rollout_steps=rollout_steps, steps=steps,
                                bootstrap_resamples=bootstrap_resamples)
    summary["stochastic"] = stochastic
    summary["num_samples"] = samples
    summary["timing"] = {"rollout_wall_s": wall, "first_call_s": first_s,
                         "trajectories": int(pred.shape[1]), "steps": rollout_steps, "samples": samples,
                         "peak_bytes_in_use": peak_bytes_in_use()}
    if samples > 1:
        t_cmp = min(rollout_steps, data.horizon)
        ref = data.u[:, data.history : data.history + t_cmp]
        spread = jax.jit(M.spread_error)(pred[:, :, :t_cmp], ref)
        summary["uncertainty"] = summarize_spread(spread, float(np.mean(data.dt)), bootstrap_resamples)
    return summary, {"pred": pred[0], "ref": data.u[:, data.history :]}


def evaluate_baseline(data: EvalData, *, resolution: int, inner_steps: int = 1,
                      rollout_steps: int | None = None, steps=None, pde: str | None = None,
                      bootstrap_resamples: int = 1000) -> tuple[dict, dict]:
    """The numerical baseline at ``resolution`` points, summarised like a model."""
    rollout_steps = int(rollout_steps or data.horizon)
    u0 = data.u[:, data.history - 1]
    pred, info = run_baseline(pde or data.pde, u0, data.params, data.dt, rollout_steps,
                              resolution=resolution, inner_steps=inner_steps, t0=data.t_start)
    raw = compute_metrics(pred, data.u, data.dt, history=data.history,
                          spatial_dims=data.spatial_dims, flow=data.flow,
                          domain_length=data.domain_length)
    summary = summarize_metrics(raw, data.dt, rollout_steps=rollout_steps, steps=steps,
                                bootstrap_resamples=bootstrap_resamples)
    summary["timing"] = {"rollout_wall_s": info["wall_s"], "first_call_s": info["wall_s"] + info["compile_s"],
                         "trajectories": int(pred.shape[0]), "steps": rollout_steps, "samples": 1,
                         "state_steps_per_s": int(pred.shape[0]) * rollout_steps * inner_steps
                         / max(info["wall_s"], 1e-12)}
    summary["baseline"] = info
    return summary, {"pred": pred, "ref": data.u[:, data.history :]}
