"""Summarise the step-counted KS study: one table and one figure (τ₀.₈ against optimizer steps).

Reads every ``<root>/<experiment>/steps<S>_seed<s>/`` written by ``run_steps.sh`` / ``wave.sh``:
the test report (``eval/test-*/report.json``) and ``metrics.jsonl`` (steps/s, from which the
step loop's wall time is summed). Writes ``steps.md`` (the table, with paired-bootstrap
τ₀.₈ ratios refiner / MSE U-Net at each step count and seed, the other models' rows, the
numerical baseline rows and the extrapolation of the ratio to the paper's 1.3), ``steps.json``
and ``tau_vs_steps.png`` (τ₀.₈ and the ratio against steps).

The extrapolation fits ratio = a + b·log10(steps) through every point where both models ran,
and repeats the fit on paired bootstrap resamples of the test trajectories (the same resampled
trajectory set for every point: they share one test set). Its interval is the statistical
part of the uncertainty only: it assumes the log-linear form holds beyond the data.

    python experiments/ks_pderefiner/summarize_steps.py runs/ks_steps --out docs/results/ks_steps
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from pdekit._io import atomic_path, write_atomic
from pdekit.evaluation.stats import paired_ratio_ci

MODELS = {"ks_mse_unet": "MSE U-Net", "ks_pderefiner": "PDE-Refiner"}
OTHERS = {"ks_fno": "FNO", "ks_mppde": "MP-PDE",  # MP-PDE's KS bundle/stride sweep:
          "ks_mppde_s4f1": "MP-PDE h1 f1 stride 4", "ks_mppde_s4f4": "MP-PDE h4 f4 stride 4"}  # one step count each, against the MSE U-Net
TARGET = 1.3  # the paper's ratio (Lippe et al. 2023)
RUN = re.compile(r"steps(\d+)_seed(\d+)$")


def read_point(run: Path) -> dict | None:
    """One run's τ₀.₈ (mean, interval, per-trajectory values), steps and rate, or None."""
    reports = sorted(run.glob("eval/test-*/report.json"))
    if not reports:
        return None
    report = json.loads(reports[0].read_text())
    entry = report["entries"][next(k for k in report["entries"] if not k.startswith("solver"))]
    steps, wall, rates = 0, 0.0, []
    metrics = run / "metrics.jsonl"
    if metrics.exists():
        last = 0
        for line in metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("steps_per_s"):
                wall += (rec["step"] - last) / rec["steps_per_s"]
                rates.append(rec["steps_per_s"])
            last = steps = int(rec["step"])
    baselines = {k: v["tau"]["0.8"] for k, v in report["entries"].items() if k.startswith("solver")}
    return {"tau": entry["tau"]["0.8"], "steps": steps, "loop_wall_s": wall,
            "steps_per_s": float(np.median(rates)) if rates else None,
            "fingerprint": report["data_fingerprint"], "baselines": baselines}


def collect(root: Path) -> dict:
    points = {}
    for exp in (*MODELS, *OTHERS):
        for run in sorted((root / exp).glob("steps*_seed*")):
            m = RUN.search(run.name)
            p = read_point(run) if m else None
            if p is not None:
                points[(exp, int(m.group(1)), int(m.group(2)))] = p
    return points


def _ci(t: dict) -> str:
    return f"{t['mean']:.1f} [{t['lo']:.1f}, {t['hi']:.1f}]"


def table(points: dict) -> tuple[str, list]:
    rows, out = [], []
    keys = sorted({(s, seed) for _, s, seed in points})
    head = ("| steps | seed | MSE U-Net τ₀.₈ | PDE-Refiner τ₀.₈ | ratio [95% CI] | "
            "τ₀.₈ PDEArena convention (MSE / refiner) | "
            "steps/s (MSE / refiner) | loop wall s (MSE / refiner) |")
    rows += [head, "|" + "---|" * 8]
    keys = sorted({(s, seed) for e, s, seed in points if e in MODELS})
    for s, seed in keys:
        a, b = points.get(("ks_pderefiner", s, seed)), points.get(("ks_mse_unet", s, seed))
        ratio = (paired_ratio_ci(a["tau"]["values"], b["tau"]["values"])
                 if a and b and a["fingerprint"] == b["fingerprint"] else None)
        cell = "–" if ratio is None else f"{ratio['ratio']:.2f} [{ratio['lo']:.2f}, {ratio['hi']:.2f}]"

        def rate(p):
            return "–" if p is None or p["steps_per_s"] is None else f"{p['steps_per_s']:.0f}"

        def wall(p):
            return "–" if p is None else f"{p['loop_wall_s']:.0f}"

        def arena(p):
            return "–" if p is None or p["tau"].get("pdearena") is None else f"{p['tau']['pdearena']:.1f}"

        rows.append(f"| {s:,} | {seed} | {_ci(b['tau']) if b else '–'} | "
                    f"{_ci(a['tau']) if a else '–'} | {cell} | {arena(b)} / {arena(a)} | "
                    f"{rate(b)} / {rate(a)} | {wall(b)} / {wall(a)} |")
        out.append({"steps": s, "seed": seed, "mse": b and b["tau"], "refiner": a and a["tau"],
                    "ratio": ratio})
    for (e, s, seed), p in sorted(points.items()):
        if e not in OTHERS:
            continue
        ref = points.get(("ks_mse_unet", s, seed))
        ratio = (paired_ratio_ci(p["tau"]["values"], ref["tau"]["values"])
                 if ref and ref["fingerprint"] == p["fingerprint"] else None)
        cell = "–" if ratio is None else f"{ratio['ratio']:.2f} [{ratio['lo']:.2f}, {ratio['hi']:.2f}] vs MSE"
        rate = "–" if p["steps_per_s"] is None else f"{p['steps_per_s']:.0f}"
        rows.append(f"| {s:,} | {seed} | {OTHERS[e]}: {_ci(p['tau'])} | | {cell} | "
                    f"{p['tau'].get('pdearena', float('nan')):.1f} | {rate} | {p['loop_wall_s']:.0f} |")
        out.append({"steps": s, "seed": seed, e: p["tau"], "ratio_vs_mse": ratio})
    base = {k: v for p in points.values() for k, v in p["baselines"].items()}
    for name, t in sorted(base.items()):
        rows.append(f"| {name} | – | {_ci(t)} | | | {t.get('pdearena', float('nan')):.1f} | | |")
    return "\n".join(rows) + "\n", out


def extrapolate(points: dict, resamples: int = 2000, seed: int = 0) -> dict | None:
    """The step count where ratio = a + b·log10(steps) reaches TARGET, with a paired bootstrap.

    Every (steps, seed) with both models is a point. Each resample draws one set of test
    trajectory indices and uses it for every point (one shared test set), refits (a, b) and
    solves for the crossing. Returns the fit, the median crossing and its 95 % interval (the
    fraction of resamples whose slope is not positive is reported, not hidden), or None with
    fewer than two distinct step counts.
    """
    pairs = [(s, np.asarray(points[("ks_pderefiner", s, sd)]["tau"]["values"], float),
              np.asarray(points[("ks_mse_unet", s, sd)]["tau"]["values"], float))
             for (e, s, sd) in sorted(points) if e == "ks_pderefiner"
             and ("ks_mse_unet", s, sd) in points]
    if len({s for s, _, _ in pairs}) < 2:
        return None
    x = np.log10([s for s, _, _ in pairs])
    n = min(len(a) for _, a, _ in pairs)

    def fit(idx):
        r = np.array([np.nanmean(a[idx]) / np.nanmean(b[idx]) for _, a, b in pairs])
        slope, icept = np.polyfit(x, r, 1)
        return icept, slope, r

    a0, b0, r0 = fit(np.arange(n))
    rng = np.random.default_rng(seed)
    cross, nonpos = [], 0
    for _ in range(resamples):
        a, b, _ = fit(rng.integers(0, n, n))
        if b <= 1e-12:  # flat or falling: no crossing
            nonpos += 1
            continue
        cross.append((TARGET - a) / b)
    cross = np.asarray(cross)
    return {"target": TARGET, "intercept": float(a0), "slope_per_decade": float(b0),
            "points": [{"steps": int(s), "ratio": float(r)} for (s, _, _), r in zip(pairs, r0, strict=True)],
            "crossing_steps": float(10 ** ((TARGET - a0) / b0)) if b0 > 1e-12 else None,
            "crossing_lo": float(10 ** np.quantile(cross, 0.025)) if cross.size else None,
            "crossing_hi": float(10 ** np.quantile(cross, 0.975)) if cross.size else None,
            "resamples": resamples, "nonpositive_slopes": nonpos}


def extrapolation_md(ex: dict | None) -> str:
    if ex is None:
        return "\nExtrapolation: needs both models at two or more step counts.\n"
    pts = ", ".join(f"{p['ratio']:.2f} at {p['steps']:,}" for p in ex["points"])
    cross = ("not reached (slope ≤ 0)" if ex["crossing_steps"] is None else
             f"**{ex['crossing_steps']:,.0f} steps** [95 % paired bootstrap "
             f"{ex['crossing_lo']:,.0f}, {ex['crossing_hi']:,.0f}]")
    return (f"\nRatio against log10(steps): {ex['intercept']:.3f} + {ex['slope_per_decade']:.3f} "
            f"per decade, through {pts}. It would reach {ex['target']} at {cross} "
            f"({ex['resamples']} resamples, {ex['nonpositive_slopes']} with a slope ≤ 0). "
            "The interval is statistical only: it assumes the log-linear form holds beyond the "
            "largest step count measured.\n")


def figure(points: dict, ex: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axr) = plt.subplots(1, 2, figsize=(11, 4))
    for (exp, label), marker in zip(MODELS.items(), ("o", "s"), strict=True):
        pts = sorted((s, seed, p["tau"]) for (e, s, seed), p in points.items() if e == exp)
        if not pts:
            continue
        s = np.array([p[0] for p in pts], float) * (1.0 if exp == "ks_mse_unet" else 1.04)
        m = np.array([p[2]["mean"] for p in pts])
        err = np.array([[p[2]["mean"] - p[2]["lo"], p[2]["hi"] - p[2]["mean"]] for p in pts]).T
        ax.errorbar(s, m, yerr=err, fmt=marker, capsize=3, label=label)
    for (e, s, _), p in sorted(points.items()):
        if e in OTHERS:
            t = p["tau"]
            ax.errorbar([s * 0.96], [t["mean"]], yerr=[[t["mean"] - t["lo"]], [t["hi"] - t["mean"]]],
                        fmt="^", capsize=3, label=OTHERS[e])
    for name, t in sorted({k: v for p in points.values() for k, v in p["baselines"].items()}.items()):
        ax.axhline(t["mean"], ls=":", lw=1, color="gray")
        ax.annotate(name, (ax.get_xlim()[0], t["mean"]), fontsize=7, color="gray")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer steps (batch 128)")
    ax.set_ylabel("τ₀.₈ (time units), mean and 95% CI, 128 test trajectories")
    ax.legend(fontsize=8)
    for (e, s, sd), a in sorted(points.items()):
        b = points.get(("ks_mse_unet", s, sd))
        if e != "ks_pderefiner" or b is None:
            continue
        r = paired_ratio_ci(a["tau"]["values"], b["tau"]["values"])
        axr.errorbar([s], [r["ratio"]], yerr=[[r["ratio"] - r["lo"]], [r["hi"] - r["ratio"]]],
                     fmt="o", color="C1", capsize=3)
    if ex is not None:
        hi = max(ex["crossing_hi"] or 0, max(p["steps"] for p in ex["points"])) * 1.5
        xs = np.geomspace(min(p["steps"] for p in ex["points"]), hi, 50)
        axr.plot(xs, ex["intercept"] + ex["slope_per_decade"] * np.log10(xs), "--", color="C1",
                 lw=1, label="log-linear fit (extrapolated)")
        if ex["crossing_steps"]:
            axr.axvspan(ex["crossing_lo"], ex["crossing_hi"], color="C1", alpha=0.12,
                        label="crossing, 95 % bootstrap")
    axr.axhline(TARGET, color="k", lw=1, ls=":", label=f"paper's ratio {TARGET}")
    axr.axhline(1.0, color="gray", lw=0.8)
    axr.set_xscale("log")
    axr.set_xlabel("optimizer steps (batch 128)")
    axr.set_ylabel("τ₀.₈ ratio PDE-Refiner / MSE U-Net (paired 95% CI)")
    axr.legend(fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/results/ks_steps"))
    args = ap.parse_args()
    points = collect(args.root)
    if not points:
        raise SystemExit(f"summarize_steps: no evaluated runs under {args.root}")
    md, rows = table(points)
    ex = extrapolate(points)
    md += extrapolation_md(ex)
    write_atomic(args.out / "steps.md", md)
    write_atomic(args.out / "steps.json", json.dumps(
        {"rows": rows, "extrapolation": ex,
         "points": {f"{e}:{s}:{seed}": p for (e, s, seed), p in points.items()}}, indent=1))
    figure(points, ex, args.out / "tau_vs_steps.png")
    print(md)


if __name__ == "__main__":
    main()
