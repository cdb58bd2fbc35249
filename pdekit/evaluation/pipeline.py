"""From a batched rollout and its reference to every metric of the report.

:func:`compute_metrics` is one jitted function over the batched arrays (per trajectory and
per step); :func:`summarize_metrics` turns its output into the JSON-ready summaries (mean,
bootstrap 95% interval, median over trajectories; times in PDE time units).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from pdekit.evaluation import flow as FL
from pdekit.evaluation import metrics as M
from pdekit.evaluation import spectra as SP
from pdekit.evaluation.stats import summarize

THRESHOLDS = (0.8, 0.9, 0.95)


def compute_metrics(pred, ref_full, dt, *, history: int, spatial_dims: int,
                    thresholds: tuple[float, ...] = THRESHOLDS, factor: float = 10.0,
                    kmax: int | None = None, flow: FL.FlowFields | None = None,
                    domain_length=None) -> dict:
    """:func:`metrics_jit` with the spectral bands ending at ``kmax``; by default the last
    wavenumber the reference populates (:func:`pdekit.evaluation.spectra.populated_kmax`).

    ``flow`` (2D flows, :func:`pdekit.evaluation.flow.flow_fields`) adds the enstrophy and
    kinetic energy of prediction and reference per trajectory and step (keys ``enstrophy_*``,
    ``energy_*``), with ``domain_length`` one ``L`` per trajectory (default 2 pi)."""
    if kmax is None:
        resolved = SP.resolved_kmax(np.shape(ref_full)[3:])
        sample = ref_full[:: max(1, np.shape(ref_full)[0] // 8), :: max(1, np.shape(ref_full)[1] // 8)]
        kmax = SP.populated_kmax(SP.energy_spectrum(jnp.asarray(sample), spatial_dims), resolved)
    if flow is not None:
        n = np.shape(ref_full)[0]
        domain_length = np.broadcast_to(np.asarray(
            2 * np.pi if domain_length is None else domain_length, np.float64), (n,))
    out = metrics_jit(pred, ref_full, dt, history=history, spatial_dims=spatial_dims,
                      thresholds=tuple(thresholds), factor=factor, kmax=int(kmax), flow=flow,
                      domain_length=None if flow is None else jnp.asarray(domain_length))
    out["kmax"] = int(kmax)
    if flow is not None:
        out["flow"] = flow
    return out


@partial(jax.jit, static_argnames=("history", "spatial_dims", "thresholds", "factor", "kmax",
                                   "flow"))
def metrics_jit(pred, ref_full, dt, *, history: int, spatial_dims: int,
                thresholds: tuple[float, ...], factor: float, kmax: int,
                flow: FL.FlowFields | None = None, domain_length=None) -> dict:
    """All per-trajectory / per-step metrics of a rollout (physical fields).

    ``pred`` is ``(B, T, C, *S)`` (step ``j`` = ``j`` model steps after the last input frame),
    ``ref_full`` the whole reference ``(B, T', C, *S)`` at the model stride whose first
    ``history`` frames were the input, ``dt`` the model step ``(B,)``. Metrics against the
    reference use the first ``T_cmp = min(T, T' - history)`` steps; stability uses all ``T``
    steps; when ``T > T_cmp`` the steps beyond are compared with the reference climatology.
    """
    t_cmp = min(pred.shape[1], ref_full.shape[1] - history)
    ref = ref_full[:, history : history + t_cmp]
    head = pred[:, :t_cmp]
    rho = M.correlation(head, ref)
    out = {"rho": rho, "nrmse": M.nrmse(head, ref), "tau": {}, "pdearena": {}}
    for c in thresholds:
        tau, censored, _ = M.first_crossing_time(rho, c, dt)
        out["tau"][c] = {"tau": tau, "censored": censored}
        out["pdearena"][c] = M.pdearena_time(rho, c, jnp.mean(dt))
    ref_max = jnp.max(M.field_norm(ref_full), axis=1)
    out["blowup_time"], out["stable"], out["blowup_step"] = M.blowup(pred, ref_max, dt, factor)
    e_pred = SP.energy_spectrum(head, spatial_dims)
    e_ref = SP.energy_spectrum(ref, spatial_dims)
    out["spectrum_pred"], out["spectrum_ref"] = e_pred, e_ref
    out["band"] = SP.band_errors(e_pred, e_ref, kmax)
    out["log_spectrum_distance"] = SP.log_spectrum_distance(e_pred, e_ref, kmax)
    if pred.shape[1] > t_cmp:
        out["long"] = SP.long_horizon_stats(pred[:, t_cmp:], ref_full, spatial_dims, kmax)
    if flow is not None:
        out["invariants"] = FL.invariants(head, ref, flow, domain_length)
    return out


def report_steps(n: int, requested=None) -> list[int]:
    """Steps (1-based) at which nRMSE/ρ/spectra are tabulated: ``requested`` clipped to
    ``1..n``, or by default ``{1, n/16, n/4, n/2, n}`` rounded."""
    if requested:
        steps = [int(s) for s in requested if 1 <= int(s) <= n]
    else:
        steps = [1] + [max(1, round(n * f)) for f in (1 / 16, 1 / 4, 1 / 2, 1.0)]
    return sorted(set(steps))


def summarize_metrics(raw: dict, dt: np.ndarray, *, rollout_steps: int, steps=None,
                      bootstrap_resamples: int = 1000) -> dict:
    """JSON-ready summaries of :func:`compute_metrics` output.

    Time axes: ``t = step * mean(dt)`` for the per-step curves; crossing and blow-up times
    use each trajectory's own ``dt``. Each ``tau[c]`` also keeps the per-trajectory crossing
    times as ``values`` (trajectory order of the data), for paired comparisons of models.
    """
    dt = np.asarray(dt, np.float64)
    rho = np.asarray(raw["rho"])
    t_cmp = rho.shape[1]
    dt_mean = float(dt.mean())
    sel = report_steps(t_cmp, steps)
    s = lambda v: summarize(np.asarray(v), bootstrap_resamples=bootstrap_resamples)
    out = {
        "dt": {"mean": dt_mean, "min": float(dt.min()), "max": float(dt.max()),
               "definition": "model step = data stride x saved interval, per trajectory"},
        "num_trajectories": int(rho.shape[0]),
        "compared_steps": int(t_cmp),
        "rollout_steps": int(rollout_steps),
        "curves": {"time": (np.arange(1, t_cmp + 1) * dt_mean).tolist(),
                   "rho": s(rho), "nrmse": s(raw["nrmse"])},
        "at_steps": {},
        "tau": {},
    }
    for c, v in raw["tau"].items():
        tau = np.asarray(v["tau"], np.float64)
        censored = np.asarray(v["censored"])
        entry = s(tau)
        entry["median"] = float(np.median(tau))
        entry["censored"] = int(censored.sum())
        entry["pdearena"] = float(raw["pdearena"][c])
        entry["values"] = tau.tolist()  # per trajectory, same order (paired comparisons)
        out["tau"][f"{c:g}"] = entry
    for j in sel:
        i = j - 1
        out["at_steps"][str(j)] = {
            "time": j * dt_mean,
            "rho": s(rho[:, i]),
            "nrmse": s(np.asarray(raw["nrmse"])[:, i]),
            **{f"spectral_{k}": s(np.asarray(v)[:, i]) for k, v in raw["band"].items()},
            "log_spectrum_distance": s(np.asarray(raw["log_spectrum_distance"])[:, i]),
        }
    # spectral errors averaged over the compared horizon, per trajectory
    with np.errstate(invalid="ignore"):
        out["spectral"] = {k: s(np.nanmean(np.asarray(v), axis=1)) for k, v in raw["band"].items()}
        out["spectral"]["kmax"] = int(raw.get("kmax", 0))
        out["spectral"]["log_spectrum_distance"] = s(
            np.nanmean(np.asarray(raw["log_spectrum_distance"]), axis=1))
    stable = np.asarray(raw["stable"])
    out["stability"] = {"stable_fraction": float(stable.mean()),
                        "num_blown_up": int((~stable).sum()),
                        "blowup_time": s(raw["blowup_time"])}
    e_pred = np.asarray(raw["spectrum_pred"])
    e_ref = np.asarray(raw["spectrum_ref"])
    out["spectra"] = {"steps": sel,
                      "pred": [np.nanmean(e_pred[:, j - 1], axis=0).tolist() for j in sel],
                      "ref": [np.mean(e_ref[:, j - 1], axis=0).tolist() for j in sel]}
    if "invariants" in raw:
        out["invariants"] = summarize_invariants(raw, sel, dt_mean, bootstrap_resamples)
    if "long" in raw:
        lg = {k: np.asarray(v) for k, v in raw["long"].items()}
        out["long_horizon"] = {
            "steps": int(rollout_steps) - t_cmp,
            **{k: s(lg[k]) for k in ("mean_pred", "mean_ref", "var_pred", "var_ref", "var_ratio",
                                     "log_spectrum_distance", "band_low", "band_mid", "band_high")},
            "spectrum_pred": np.nanmean(lg["spectrum_pred"], axis=0).tolist(),
            "spectrum_ref": np.mean(lg["spectrum_ref"], axis=0).tolist(),
        }
    return _jsonable(out)


def summarize_invariants(raw: dict, steps: list[int], dt_mean: float,
                         bootstrap_resamples: int = 1000) -> dict:
    """Enstrophy and kinetic-energy summaries of :func:`compute_metrics` output (2D flows).

    ``curves``: per step, the trajectory summary (mean, 95 % interval, median) of the ratios
    ``Z_pred / Z_ref`` and ``E_pred / E_ref`` and of the reference's ``Z`` and ``E``;
    ``at_steps``: the same at the report ``steps``. Non-finite ratios (a blown-up rollout)
    are left out of the means and counted in ``n_nonfinite``.
    """
    inv = {k: np.asarray(v, np.float64) for k, v in raw["invariants"].items()}
    s = lambda v: summarize(v, bootstrap_resamples=bootstrap_resamples)
    keys = ("enstrophy_ratio", "energy_ratio", "enstrophy_ref", "energy_ref")
    flow = raw.get("flow")
    return {
        "field": flow.describe() if flow is not None else "vorticity",
        "definition": "Z = 1/2 <omega^2>, E = 1/2 <|u|^2> with u from -Lap psi = omega "
                      "(spectral); ratios prediction / reference per trajectory and step",
        "curves": {"time": (np.arange(1, inv["enstrophy_ratio"].shape[1] + 1) * dt_mean).tolist(),
                   **{k: s(inv[k]) for k in keys}},
        "at_steps": {str(j): {"time": j * dt_mean, **{k: s(inv[k][:, j - 1]) for k in keys}}
                     for j in steps},
    }


def summarize_spread(spread: dict, dt_mean: float, bootstrap_resamples: int = 1000) -> dict:
    """JSON-ready summary of :func:`pdekit.evaluation.metrics.spread_error` output."""
    s = lambda v: summarize(np.asarray(v), bootstrap_resamples=bootstrap_resamples)
    corr_traj = np.asarray(spread["corr_traj"])
    return _jsonable({
        "time": (np.arange(1, corr_traj.shape[0] + 1) * dt_mean).tolist(),
        "spread": s(spread["spread"]),
        "error": s(spread["error"]),
        "corr_time": s(spread["corr_time"]),
        "corr_traj": corr_traj.tolist(),
        "corr_traj_mean": float(np.nanmean(corr_traj)),
        "ensemble_mean_rho": s(spread["rho_mean"]),
        "ensemble_mean_nrmse": s(spread["nrmse_mean"]),
    })


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
