"""``report.json`` and ``report.md``: one table row per model run or baseline.

A report is ``{"split", "data", "dt", "entries": {name: summary}, ...}`` where each summary
comes from :func:`pdekit.evaluation.runner.evaluate_model` / ``evaluate_baseline``. With a
``reference`` entry, the other entries carry ``ratio_vs_reference`` (see
:mod:`pdekit.evaluation.compare`) and the markdown gets a second table; the data checks of each
run (``runs[name]["checks"]``, :mod:`pdekit.evaluation.checks`) become lines under the title.
Files are written to a temporary name and renamed; ``pdekit evaluate`` writes whole report
directories through :class:`pdekit.evaluation.publish.ReportStage` (all-or-nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

from pdekit._io import write_atomic

TABLE_THRESHOLDS = ("0.8", "0.9")


def _f(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _ci(s: dict, digits: int = 3) -> str:
    return f"{_f(s['mean'], digits)} [{_f(s['lo'], digits)}, {_f(s['hi'], digits)}]"


def _common_times(entries: dict[str, dict]) -> list[tuple[float, dict[str, str | None]]]:
    """Up to 4 report times of the first entry and, per entry, its report step at that time.

    Entries may step differently (temporal bundling, another stride): an entry's step
    matches when its time is within half the larger model step; otherwise it shows "–".
    """
    first = next(iter(entries.values()))
    cols = []
    for at in first["at_steps"].values():
        col = {}
        for name, s in entries.items():
            tol = 0.5 * max(float(s["dt"]["mean"]), float(first["dt"]["mean"])) + 1e-9
            near = min(s["at_steps"], key=lambda k: abs(s["at_steps"][k]["time"] - at["time"]))
            col[name] = near if abs(s["at_steps"][near]["time"] - at["time"]) <= tol else None
        if all(v is not None for v in col.values()) or len(cols) < 4:
            cols.append((float(at["time"]), col))
    full = [c for c in cols if all(v is not None for v in c[1].values())]
    return (full or cols)[:4]


def markdown_table(entries: dict[str, dict]) -> str:
    """The comparison table: τ (first crossing and PDEArena), nRMSE, stability, spectra, time."""
    times = _common_times(entries)
    head = ["entry"]
    for c in TABLE_THRESHOLDS:
        head += [f"τ_{c} mean [95% CI]", f"τ_{c} median", f"τ_{c} censored", f"τ_{c} PDEArena"]
    head += [f"nRMSE t={t:.3g}" for t, _ in times]
    head += ["stable fraction", "spec. err low", "mid", "high", "log-spec dist", "wall s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in entries.items():
        row = [name]
        for c in TABLE_THRESHOLDS:
            tau = s["tau"][c]
            row += [_ci(tau), _f(tau["median"]), f"{tau['censored']}/{tau['n']}", _f(tau["pdearena"])]
        row += [_ci(s["at_steps"][col[name]]["nrmse"]) if col[name] else "–" for _, col in times]
        sp = s["spectral"]
        row += [_f(s["stability"]["stable_fraction"]), _f(sp["low"]["mean"]), _f(sp["mid"]["mean"]),
                _f(sp["high"]["mean"]), _f(sp["log_spectrum_distance"]["mean"]),
                _f(s["timing"]["rollout_wall_s"], 4)]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def ratio_table(entries: dict[str, dict]) -> str:
    """τ ratio vs the reference: ``ratio [lo, hi]`` per threshold, one row per entry."""
    head = ["entry"] + [f"τ_{c} ratio [95% CI]" for c in TABLE_THRESHOLDS] + ["paired n"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in entries.items():
        r = s.get("ratio_vs_reference")
        if not r:
            continue
        row = [name] + [f"{_f(r[c]['ratio'])} [{_f(r[c]['lo'])}, {_f(r[c]['hi'])}]"
                        if c in r else "–" for c in TABLE_THRESHOLDS]
        row.append(str(next((r[c]["n"] for c in TABLE_THRESHOLDS if c in r), "–")))
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def invariants_table(entries: dict[str, dict]) -> str:
    """Enstrophy and energy ratios prediction / reference, mean [95% CI] (median), at up to 4
    report times common to the entries that have them (2D flows)."""
    have = {n: s for n, s in entries.items() if "invariants" in s}
    if not have:
        return ""
    times = _common_times(have)
    head = ["entry"] + [f"{q} t={t:.3g}" for q in ("Z ratio", "E ratio") for t, _ in times]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in have.items():
        at = s["invariants"]["at_steps"]
        row = [name]
        for key in ("enstrophy_ratio", "energy_ratio"):
            for _, col in times:
                v = at.get(col[name]) if col[name] else None
                row.append("–" if v is None else f"{_ci(v[key])} ({_f(v[key]['median'])})")
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def _shape(shape) -> str:
    return "x".join(str(n) for n in shape) if shape else "?"


def check_lines(report: dict) -> list[str]:
    """Markdown lines for the data checks of each run (``runs[name]["checks"]``): the data's
    PDE and resolution, and warnings for a resolution transfer, the training data and
    conditioning outside the training range."""
    lines = []
    for name, meta in report.get("runs", {}).items():
        c = meta.get("checks")
        if not c:
            continue
        pde, res = c["pde"], c["resolution"]
        checked = "as trained" if pde["checked"] else "not checked: the run records no PDE"
        grid = (f"resolution {_shape(res['data'])}"
                + ("" if res["run"] in (None, res["data"]) else f", trained at {_shape(res['run'])}"))
        lines.append(f"- data checks ({name}): pde `{pde['data']}` ({checked}), {grid}")
        if res["transfer"]:
            lines.append(f"- **resolution transfer** ({name}): evaluated at {_shape(res['data'])}, "
                         f"trained at {_shape(res['run'])}")
        if c.get("train_split"):
            lines.append(f"- **warning** ({name}): evaluated on the run's training data "
                         "(allow_train_split=true); this does not measure generalisation")
        for e in c.get("cond_range", []):
            lines.append(f"- **warning** ({name}): `{e['key']}` outside the training range "
                         f"[{e['range'][0]:.6g}, {e['range'][1]:.6g}] for {e['outside']} of "
                         f"{e['of']} trajectories")
    return lines


def render_markdown(report: dict) -> str:
    entries = report["entries"]
    dt = report["dt"]
    lines = [f"# Rollout evaluation: {report.get('title', report['split'])}", "",
             f"- split: `{report['split']}`, data: `{report['data']}` ({report['num_trajectories']} trajectories)",
             f"- times in PDE time units; model step Δt per trajectory = {dt['definition']}: "
             f"mean {dt['mean']:.4g} (min {dt['min']:.4g}, max {dt['max']:.4g}); per-step curves use the mean",
             f"- rollout: {report['rollout_steps']} model steps; reference horizon {report['compared_steps']} steps",
             "- τ_c: time of the first step with ρ < c per trajectory (censored = never dropped, "
             "counted at the rollout length); PDEArena: Δt × #steps with batch-mean ρ > c",
             "- spectral errors: Σ_band |E_pred − E_ref| / Σ_band E_ref, averaged over the compared "
             "steps; bands are thirds of k = 1..kmax, the last wavenumber the reference populates "
             f"(kmax = {next(iter(entries.values()))['spectral'].get('kmax', '?')})", "",
             markdown_table(entries), ""]
    extra = [f"- data fingerprint: `{report['data_fingerprint']}`"] if report.get("data_fingerprint") else []
    extra += [f"- merged from `{src['path']}` ({src['title']})" for src in report.get("sources", [])]
    extra += check_lines(report)
    lines[3:3] = extra
    ref = report.get("reference")
    if ref and any("ratio_vs_reference" in s for s in entries.values()):
        lines += [f"## τ ratio vs {ref}", "",
                  f"mean τ_c(entry) / mean τ_c({ref}) over the same trajectories; 95% interval by "
                  "a paired percentile bootstrap (trajectories resampled jointly for both). "
                  "Censored τ count at the rollout length, which can pull a ratio towards 1 "
                  "when many are censored (see the censored columns).", "",
                  ratio_table(entries), ""]
    inv = invariants_table(entries)
    if inv:
        field = next(s["invariants"]["field"] for s in entries.values() if "invariants" in s)
        lines += ["## Enstrophy and energy (prediction / reference)", "",
                  f"Z = ½⟨ω²⟩ and E = ½⟨|u|²⟩ (u from −∇²ψ = ω, spectral) of the {field}, per "
                  "trajectory and step; the table gives the ratio prediction / reference: mean "
                  "[95% CI] (median) over trajectories. 1 = no drift; non-finite ratios (blown-up "
                  "rollouts) are left out of the means.", "", inv, ""]
    for name, s in entries.items():
        if "uncertainty" in s:
            u = s["uncertainty"]
            lines += [f"## Uncertainty: {name} ({s['num_samples']} samples)", "",
                      f"- spread–error correlation over time (per trajectory): {_ci(u['corr_time'])}",
                      f"- spread–error correlation across trajectories (mean over steps): "
                      f"{_f(u['corr_traj_mean'])}",
                      f"- ensemble-mean nRMSE at the last step: {_f(u['ensemble_mean_nrmse']['mean'][-1])}", ""]
        if "long_horizon" in s:
            lg = s["long_horizon"]
            lines += [f"## Long horizon: {name} ({lg['steps']} steps beyond the reference)", "",
                      f"- mean u: {_ci(lg['mean_pred'])} vs reference {_ci(lg['mean_ref'])}",
                      f"- var u: {_ci(lg['var_pred'])} vs reference {_ci(lg['var_ref'])}",
                      f"- time-averaged spectrum: log distance {_ci(lg['log_spectrum_distance'])}, "
                      f"band errors low/mid/high {_f(lg['band_low']['mean'])} / "
                      f"{_f(lg['band_mid']['mean'])} / {_f(lg['band_high']['mean'])}", ""]
    if report.get("figures"):
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in report["figures"]] + [""]
    return "\n".join(lines)


def write_report(report: dict, directory: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``directory``."""
    directory = Path(directory)
    j = write_atomic(directory / "report.json", json.dumps(report, indent=1, allow_nan=False))
    m = write_atomic(directory / "report.md", render_markdown(report))
    return j, m
