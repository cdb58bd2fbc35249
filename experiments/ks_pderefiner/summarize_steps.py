"""Summarise the step-counted KS study: one table and one figure (τ₀.₈ against optimizer steps).

Reads every ``<root>/<experiment>/steps<S>_seed<s>/`` written by ``run_steps.sh`` / ``wave.sh``:
the test report (``eval/test-*/report.json``) and ``metrics.jsonl`` (steps/s, from which the
step loop's wall time is summed). Writes ``steps.md`` (the table, with paired-bootstrap
τ₀.₈ ratios refiner / MSE U-Net at each step count and seed, and the numerical baseline rows),
``steps.json`` and ``tau_vs_steps.png``.

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
    for exp in MODELS:
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
            "steps/s (MSE / refiner) | loop wall s (MSE / refiner) |")
    rows += [head, "|" + "---|" * 7]
    for s, seed in keys:
        a, b = points.get(("ks_pderefiner", s, seed)), points.get(("ks_mse_unet", s, seed))
        ratio = (paired_ratio_ci(a["tau"]["values"], b["tau"]["values"])
                 if a and b and a["fingerprint"] == b["fingerprint"] else None)
        cell = "–" if ratio is None else f"{ratio['ratio']:.2f} [{ratio['lo']:.2f}, {ratio['hi']:.2f}]"

        def rate(p):
            return "–" if p is None or p["steps_per_s"] is None else f"{p['steps_per_s']:.0f}"

        def wall(p):
            return "–" if p is None else f"{p['loop_wall_s']:.0f}"

        rows.append(f"| {s:,} | {seed} | {_ci(b['tau']) if b else '–'} | "
                    f"{_ci(a['tau']) if a else '–'} | {cell} | {rate(b)} / {rate(a)} | "
                    f"{wall(b)} / {wall(a)} |")
        out.append({"steps": s, "seed": seed, "mse": b and b["tau"], "refiner": a and a["tau"],
                    "ratio": ratio})
    base = {k: v for p in points.values() for k, v in p["baselines"].items()}
    for name, t in sorted(base.items()):
        rows.append(f"| {name} | – | {_ci(t)} | | | | |")
    return "\n".join(rows) + "\n", out


def figure(points: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (exp, label), marker in zip(MODELS.items(), ("o", "s"), strict=True):
        pts = sorted((s, seed, p["tau"]) for (e, s, seed), p in points.items() if e == exp)
        if not pts:
            continue
        s = np.array([p[0] for p in pts], float) * (1.0 if exp == "ks_mse_unet" else 1.04)
        m = np.array([p[2]["mean"] for p in pts])
        err = np.array([[p[2]["mean"] - p[2]["lo"], p[2]["hi"] - p[2]["mean"]] for p in pts]).T
        ax.errorbar(s, m, yerr=err, fmt=marker, capsize=3, label=label)
    for name, t in sorted({k: v for p in points.values() for k, v in p["baselines"].items()}.items()):
        ax.axhline(t["mean"], ls=":", lw=1, color="gray")
        ax.annotate(name, (ax.get_xlim()[0], t["mean"]), fontsize=7, color="gray")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer steps (batch 128)")
    ax.set_ylabel("τ₀.₈ (time units), mean and 95% CI over 128 test trajectories")
    ax.legend()
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
    write_atomic(args.out / "steps.md", md)
    write_atomic(args.out / "steps.json", json.dumps(
        {"rows": rows, "points": {f"{e}:{s}:{seed}": p for (e, s, seed), p in points.items()}},
        indent=1))
    figure(points, args.out / "tau_vs_steps.png")
    print(md)


if __name__ == "__main__":
    main()
