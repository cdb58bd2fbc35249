"""Summarise the 2D study (Kolmogorov flow; run.sh): one table, the merged report and figures.

Reads every ``<root>/<experiment>/steps<S>_seed<s>/`` that ``run.sh`` / ``run_point.sh`` wrote:
the test report (``eval/test-*/report.json``), ``config.yaml`` (parameter count),
``metrics.jsonl`` (train steps/s, step-loop wall time) and ``<name>.memory.json`` beside the
run (the training process's peak device memory; ``None`` on a CPU). Writes into ``--out``:

* ``study.md`` / ``study.json``: per point τ₀.₈ and τ₀.₉ (mean [95 % CI] of per-trajectory
  first crossings), the paired-bootstrap τ ratio against the matched U-Net (``ns2d_unet35m``,
  same steps, same seed, else seed 0), the stable fraction, nRMSE and the enstrophy / energy
  ratios prediction / reference at the report times, train steps/s, peak memory, and the
  numerical-baseline rows (with their solve wall time); then the seed spread and the padding
  ablation (``ns2d_sinenet_zeros`` against ``ns2d_sinenet``, paired);
* ``report.md`` / ``report.json`` with ``curves.png``, ``spectra_compare.png`` (vorticity
  spectra at the last report times) and ``invariants.png``: the merged report of every point
  (:func:`pdekit.evaluation.compare.merge_reports`, ratios against the matched U-Net);
* ``tau.png`` (τ₀.₈, τ₀.₉ per point, the baselines as lines) and the per-point
  ``snapshots_<experiment>_<name>.png`` (prediction | reference | error) copied from the reports.

    python experiments/ns2d_study/summarize.py runs/ns2d_study --out docs/results/ns2d_study
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
import yaml

from pdekit._io import atomic_path, write_atomic
from pdekit.evaluation import plots
from pdekit.evaluation.compare import add_reference_ratios, merge_reports
from pdekit.evaluation.report import write_report
from pdekit.evaluation.stats import paired_ratio_ci

LABELS = {"ns2d_sinenet": "SineNet-8", "ns2d_sinenet2": "SineNet-2",
          "ns2d_sinenet_zeros": "SineNet-8, zero padding", "ns2d_unet35m": "U-Net (35 M)",
          "ns2d_unet": "U-Net (Unetmod-64)", "ns2d_fno35m": "FNO (35 M)"}
REFERENCE = "ns2d_unet35m"
RUN = re.compile(r"steps(\d+)_seed(\d+)$")
GIB = 2.0**30


def _metrics(path: Path) -> dict:
    """Median steps/s, summed step-loop wall and last step of ``metrics.jsonl``."""
    steps, wall, rates, last = 0, 0.0, [], 0
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "step" not in rec:
                continue
            if rec.get("steps_per_s"):
                wall += (rec["step"] - last) / rec["steps_per_s"]
                rates.append(rec["steps_per_s"])
            last = steps = int(rec["step"])
    return {"trained_steps": steps, "loop_wall_s": wall,
            "steps_per_s": float(np.median(rates)) if rates else None}


def read_point(run: Path) -> dict | None:
    """One run's report entry, baselines, parameter count, rate and memory; None if unevaluated."""
    reports = sorted(run.glob("eval/test-*/report.json"))
    if not reports:
        return None
    report = json.loads(reports[0].read_text())
    name = next(k for k in report["entries"] if not k.startswith("solver"))
    cfg = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").exists() else {}
    memory = run.parent / f"{run.name}.memory.json"
    mem = json.loads(memory.read_text()) if memory.exists() else {}
    return {"report_file": str(reports[0]), "report_dir": str(reports[0].parent),
            "entry_name": name, "entry": report["entries"][name],
            "baselines": {k: v for k, v in report["entries"].items() if k.startswith("solver")},
            "fingerprint": report["data_fingerprint"],
            "num_params": ((cfg or {}).get("derived") or {}).get("num_params"),
            "train_peak_bytes": mem.get("peak_bytes_in_use"),
            "eval_peak_bytes": report["entries"][name].get("timing", {}).get("peak_bytes_in_use"),
            **_metrics(run / "metrics.jsonl")}


def collect(root: Path) -> dict:
    points = {}
    for exp_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("ns2d")):
        for run in sorted(exp_dir.glob("steps*_seed*")):
            m = RUN.search(run.name)
            p = read_point(run) if m and run.is_dir() else None
            if p is not None:
                points[(exp_dir.name, int(m.group(1)), int(m.group(2)))] = p
    return points


def matched(points: dict, exp: str, steps: int, seed: int):
    """The point of ``exp`` at ``steps`` with ``seed``, else with seed 0, else None."""
    return points.get((exp, steps, seed)) or points.get((exp, steps, 0))


def _ci(t: dict | None, digits: int = 3) -> str:
    if not t or t.get("mean") is None:
        return "–"
    return f"{t['mean']:.{digits}g} [{t['lo']:.{digits}g}, {t['hi']:.{digits}g}]"


def _ratio(a: dict, b: dict | None, c: str) -> dict | None:
    if b is None or a is b:
        return None
    return paired_ratio_ci(a["tau"][c]["values"], b["tau"][c]["values"])


def _rcell(r: dict | None) -> str:
    return "–" if not r or r["ratio"] is None else f"{r['ratio']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"


def report_steps(entry: dict, count: int = 3) -> list[str]:
    """The last ``count`` report steps of an entry (e.g. T/4, T/2, T)."""
    return sorted(entry["at_steps"], key=int)[-count:]


def _inv(entry: dict, step: str, key: str) -> str:
    v = entry.get("invariants", {}).get("at_steps", {}).get(step)
    return "–" if v is None else _ci(v[key], 3)


def _gib(b) -> str:
    return "–" if b is None else f"{b / GIB:.1f}"


def table(points: dict) -> tuple[str, list[dict]]:
    """The study table (markdown) and its rows (JSON)."""
    first = next(iter(points.values()))["entry"]
    steps_at = report_steps(first)
    times = [first["at_steps"][s]["time"] for s in steps_at]
    head = (["model", "experiment", "params", "steps", "seed", "τ₀.₈ [95% CI]", "τ₀.₉ [95% CI]",
             f"τ₀.₈ ratio vs {LABELS[REFERENCE]}", "τ₀.₉ ratio", "stable"]
            + [f"nRMSE t={t:.3g}" for t in times[:1]]
            + [f"Z ratio t={t:.3g}" for t in times] + [f"E ratio t={times[-1]:.3g}"]
            + ["train steps/s", "train peak GiB", "rollout wall s"])
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    for (exp, steps, seed), p in sorted(points.items(), key=lambda kv: (kv[0][0] != REFERENCE, kv[0])):
        e = p["entry"]
        ref = matched(points, REFERENCE, steps, seed)
        ref_e = None if ref is None or ref["fingerprint"] != p["fingerprint"] else ref["entry"]
        r8, r9 = _ratio(e, ref_e, "0.8"), _ratio(e, ref_e, "0.9")
        st = e["stability"]
        n = e["num_trajectories"]
        rate = "–" if p["steps_per_s"] is None else f"{p['steps_per_s']:.1f}"
        params = "–" if p["num_params"] is None else f"{p['num_params'] / 1e6:.2f} M"
        md.append("| " + " | ".join(
            [LABELS.get(exp, exp), f"`{exp}`", params, f"{steps:,}", str(seed), _ci(e["tau"]["0.8"]),
             _ci(e["tau"]["0.9"]), _rcell(r8), _rcell(r9), f"{n - st['num_blown_up']}/{n}"]
            + [_ci(e["at_steps"][s]["nrmse"]) if s in e["at_steps"] else "–" for s in steps_at[:1]]
            + [_inv(e, s, "enstrophy_ratio") for s in steps_at] + [_inv(e, steps_at[-1], "energy_ratio")]
            + [rate, _gib(p["train_peak_bytes"]), f"{e['timing']['rollout_wall_s']:.2f}"]) + " |")
        rows.append({"experiment": exp, "steps": steps, "seed": seed, "num_params": p["num_params"],
                     "tau": {c: {k: e["tau"][c][k] for k in ("mean", "lo", "hi", "median", "censored",
                                                               "pdearena")} for c in ("0.8", "0.9")},
                     "ratio_vs_unet": {"0.8": r8, "0.9": r9},
                     "stable_fraction": st["stable_fraction"],
                     "invariants": {s: e.get("invariants", {}).get("at_steps", {}).get(s) for s in steps_at},
                     "steps_per_s": p["steps_per_s"], "loop_wall_s": p["loop_wall_s"],
                     "trained_steps": p["trained_steps"], "train_peak_bytes": p["train_peak_bytes"],
                     "eval_peak_bytes": p["eval_peak_bytes"],
                     "rollout_wall_s": e["timing"]["rollout_wall_s"]})
    base = {}
    for (_exp, steps, seed), p in sorted(points.items()):
        for name, b in p["baselines"].items():
            base.setdefault(name, (b, matched(points, REFERENCE, steps, seed), p["fingerprint"]))
    for name, (b, ref, fp) in sorted(base.items()):
        ref_e = None if ref is None or ref["fingerprint"] != fp else ref["entry"]
        r8, r9 = _ratio(b, ref_e, "0.8"), _ratio(b, ref_e, "0.9")
        st, n = b["stability"], b["num_trajectories"]
        info = b.get("baseline", {})
        md.append("| " + " | ".join(
            [name, "numerical baseline", "–", "–", "–", _ci(b["tau"]["0.8"]), _ci(b["tau"]["0.9"]),
             _rcell(r8), _rcell(r9), f"{n - st['num_blown_up']}/{n}"]
            + [_ci(b["at_steps"][s]["nrmse"]) if s in b["at_steps"] else "–" for s in steps_at[:1]]
            + [_inv(b, s, "enstrophy_ratio") for s in steps_at] + [_inv(b, steps_at[-1], "energy_ratio")]
            + ["–", "–", f"{b['timing']['rollout_wall_s']:.2f}"]) + " |")
        rows.append({"baseline": name, "tau": {c: {k: b["tau"][c][k] for k in ("mean", "lo", "hi")}
                                               for c in ("0.8", "0.9")},
                     "ratio_vs_unet": {"0.8": r8, "0.9": r9}, "stable_fraction": st["stable_fraction"],
                     "solve_wall_s": info.get("wall_s"), "compile_s": info.get("compile_s"),
                     "resolution": info.get("resolution"), "inner_steps": info.get("inner_steps")})
    return "\n".join(md) + "\n", rows


def seeds_and_ablation(points: dict) -> tuple[str, dict]:
    """Seed spread of every experiment with several seeds at one step count, and the padding
    ablation ratio (zero / circular padding, same steps and seed, paired)."""
    lines, out = [], {"seeds": [], "padding": []}
    groups: dict = {}
    for (exp, steps, seed), p in points.items():
        groups.setdefault((exp, steps), []).append((seed, p["entry"]["tau"]["0.8"]["mean"]))
    for (exp, steps), seeds in sorted(groups.items()):
        if len(seeds) > 1:
            vals = [v for _, v in sorted(seeds)]
            lines.append(f"- {LABELS.get(exp, exp)} at {steps:,} steps, seeds "
                         f"{', '.join(str(s) for s, _ in sorted(seeds))}: τ₀.₈ "
                         f"{', '.join(f'{v:.3g}' for v in vals)} (spread {max(vals) - min(vals):.2g})")
            out["seeds"].append({"experiment": exp, "steps": steps, "tau_0.8": dict(sorted(seeds))})
    for (exp, steps, seed), p in sorted(points.items()):
        if exp != "ns2d_sinenet_zeros":
            continue
        circ = points.get(("ns2d_sinenet", steps, seed))
        if circ is None or circ["fingerprint"] != p["fingerprint"]:
            continue
        r = {c: _ratio(p["entry"], circ["entry"], c) for c in ("0.8", "0.9")}
        lines.append(f"- padding ablation at {steps:,} steps, seed {seed}: τ zero / circular padding "
                     f"{_rcell(r['0.8'])} (τ₀.₈), {_rcell(r['0.9'])} (τ₀.₉), paired over the test "
                     "trajectories")
        out["padding"].append({"steps": steps, "seed": seed, "ratio": r})
    return ("\n".join(lines) + "\n") if lines else "", out


def merged_report(points: dict, out: Path) -> Path | None:
    """The merged report of every point (``pdekit evaluate merge=``'s output, written here)."""
    files = [p["report_file"] for _, p in sorted(points.items())]
    report = merge_reports(files, title="2D study: Kolmogorov flow")
    ref = next((p["entry_name"] for (e, _, seed), p in sorted(points.items(), key=lambda kv: -kv[0][1])
                if e == REFERENCE and seed == 0), None)
    if ref is not None:
        add_reference_ratios(report["entries"], ref)
    report["reference"] = ref
    out.mkdir(parents=True, exist_ok=True)
    entries = report["entries"]
    report["figures"] = [plots.plot_curves(entries, out / "curves.png").name,
                         plots.plot_spectra_compare(entries, out / "spectra_compare.png").name]
    if any("invariants" in s for s in entries.values()):
        report["figures"].append(plots.plot_invariants(entries, out / "invariants.png").name)
    write_report(report, out)
    return out / "report.md"


def figure(points: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(points, key=lambda k: (k[0] != REFERENCE, k))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(keys) + 2), 4))
    x = np.arange(len(keys))
    for off, c, marker in ((-0.12, "0.8", "o"), (0.12, "0.9", "s")):
        t = [points[k]["entry"]["tau"][c] for k in keys]
        m = np.array([v["mean"] for v in t])
        err = np.array([[v["mean"] - v["lo"], v["hi"] - v["mean"]] for v in t]).T
        ax.errorbar(x + off, m, yerr=err, fmt=marker, capsize=3, label=f"τ_{c}")
    seen = {}
    for p in points.values():
        seen.update(p["baselines"])
    for i, (name, b) in enumerate(sorted(seen.items())):
        ax.axhline(b["tau"]["0.8"]["mean"], ls=":", lw=1, color=f"C{i + 2}", label=f"{name}, τ_0.8")
    ax.set_xticks(x, [f"{LABELS.get(e, e)}\n{s:,} steps, seed {sd}" for e, s, sd in keys],
                  fontsize=7, rotation=20)
    ax.set_ylabel("τ (time units), mean and 95% CI")
    ax.legend(fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/results/ns2d_study"))
    args = ap.parse_args()
    points = collect(args.root)
    if not points:
        raise SystemExit(f"summarize: no evaluated runs under {args.root}")
    md, rows = table(points)
    extra, spread = seeds_and_ablation(points)
    data = args.root / "data.json"
    head = ["# 2D study: Kolmogorov flow", ""]
    first = next(iter(points.values()))["entry"]
    head += [f"{first['num_trajectories']} test trajectories, {first['compared_steps']} model steps "
             f"of Δt = {first['dt']['mean']:.3g} (horizon {first['compared_steps'] * first['dt']['mean']:.3g} "
             "time units). τ: per-trajectory first crossing of ρ below c, mean [95% bootstrap CI]; "
             "ratios: paired bootstrap over the same trajectories against the matched U-Net (same "
             "steps and seed, else seed 0). Z, E: enstrophy and kinetic energy, prediction / reference "
             "(mean [95% CI] over trajectories; 1 = no drift). Steps/s: the median of the logged "
             "intervals, while the points shared one GPU (shares, not throughput). Peak memory: the "
             "training process's peak_bytes_in_use (– where not recorded, e.g. on a CPU).", "", ""]
    md = "\n".join(head) + md + ("\n" + extra if extra else "")
    if data.exists():
        info = json.loads(data.read_text())
        md += "\n## Data\n\n" + "\n".join(
            f"- {s}: u {tuple(d['u_shape'])} {d['u_dtype']}, solved at {d.get('solve_resolution')}² "
            f"with {d.get('inner_steps')} steps per saved Δt = {d['saved_dt']:.3g}, "
            f"{d.get('burn_in_frames')} burn-in frames dropped of {d.get('frames_solved')}, "
            f"{d['bytes'] / 2**20:.0f} MiB, generated in {d.get('generate_wall_s', '–')} s"
            for s, d in info.items()) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "study.md", md)
    write_atomic(args.out / "study.json", json.dumps({"rows": rows, **spread}, indent=1, allow_nan=False))
    merged_report(points, args.out)
    figure(points, args.out / "tau.png")
    for (exp, steps, seed), p in sorted(points.items()):
        snap = Path(p["report_dir"]) / "snapshots.png"
        if snap.exists():
            shutil.copyfile(snap, args.out / f"snapshots_{exp}_steps{steps}_seed{seed}.png")
    print(md)


if __name__ == "__main__":
    main()
