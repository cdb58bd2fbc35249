"""Evaluation jobs from an evaluate config (``pdekit.configs.compose("evaluate", ...)``).

:func:`evaluate` rolls each run's model out on its test (or valid) split, computes the metrics
of ``docs/evaluation.md`` on physical fields, optionally runs the numerical baseline, and
writes ``<run>/eval/<split or file stem>-<data fingerprint>/report.{json,md}`` plus PNG
figures; with several runs also a comparison report in ``comparison_dir``. The data are
checked against the run first (PDE, channels, resolution, finite values, not the training
data: :mod:`pdekit.evaluation.checks`), and every report set is written all-or-nothing.
:func:`merge` instead combines reports written separately (no checkpoints needed);
``reference=<entry>`` adds paired τ ratios. Bad input raises a one-line ``ValueError``;
``pdekit evaluate`` (:mod:`pdekit.cli.evaluate`) only parses the command line around these.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from pdekit.data import open_trajectories
from pdekit.evaluation import plots
from pdekit.evaluation.baseline import read_solver_spec
from pdekit.evaluation.checks import RunFacts, check_against_run, cond_outside, cond_warning
from pdekit.evaluation.compare import add_reference_ratios, check_reference, merge_reports
from pdekit.evaluation.paths import (
    baseline_name,
    data_label,
    data_path_of,
    report_dir_of,
    run_name,
)
from pdekit.evaluation.publish import ReportStage, check_replaceable
from pdekit.evaluation.report import write_report
from pdekit.evaluation.runner import evaluate_baseline, evaluate_model, load_eval_data
from pdekit.training.run import load_run


def _given(cfg, key: str) -> bool:
    return not OmegaConf.is_missing(cfg, key) and cfg.get(key) not in (None, "", [])


def _as_list(value) -> list[str]:
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def check_config(cfg) -> list[Path]:
    """Validate the evaluate config; return the run directories (empty in merge mode)."""
    has_run, has_merge = _given(cfg, "run"), _given(cfg, "merge")
    if has_run and has_merge:
        raise ValueError("give run=... (evaluate runs) or merge=... (combine reports), not both")
    if not has_run and not has_merge:
        raise ValueError("run=<run dir> is required (or run=[a,b] to compare runs, or "
                         "merge=[a/report.json,b/report.json] to combine reports)")
    if cfg.reference is not None and not isinstance(cfg.reference, str):
        raise ValueError(f"reference must be an entry name, got {cfg.reference!r}")
    if not isinstance(cfg.bootstrap_resamples, int) or cfg.bootstrap_resamples < 1:
        raise ValueError(f"bootstrap_resamples must be a positive integer, got "
                         f"{cfg.bootstrap_resamples!r}")
    if has_merge:
        return []
    runs = [Path(r) for r in _as_list(cfg.run)]
    for r in runs:
        if not (r / "config.yaml").exists():
            raise FileNotFoundError(f"run={r}: not a run directory (no config.yaml)")
    if not isinstance(cfg.allow_train_split, bool):
        raise ValueError(f"allow_train_split must be true or false, got {cfg.allow_train_split!r}")
    if cfg.split not in ("test", "valid", "train"):
        raise ValueError(f"split must be test or valid, got {cfg.split!r}")
    if cfg.split == "train" and not cfg.allow_train_split:
        raise ValueError("split=train evaluates the run on its training data; scores on it do "
                         "not measure generalisation (pass allow_train_split=true to do it anyway)")
    if cfg.which not in ("best", "last"):
        raise ValueError(f"which must be best or last, got {cfg.which!r}")
    for key in ("rollout_steps", "max_trajectories"):
        v = cfg.get(key)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"{key} must be a positive integer or null, got {v!r}")
    if not isinstance(cfg.num_samples, int) or cfg.num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {cfg.num_samples!r}")
    b = cfg.baseline
    if b.enabled:
        if not _resolutions(cfg) or any(not isinstance(n, int) or n < 8 for n in _resolutions(cfg)):
            raise ValueError(f"baseline.resolutions must be integers >= 8, got {_resolutions(cfg)}")
        if not isinstance(b.inner_steps, int) or b.inner_steps < 1:
            raise ValueError(f"baseline.inner_steps must be a positive integer, got {b.inner_steps!r}")
    if cfg.reference:
        names = [run_name(r) for r in runs]
        if b.enabled:
            names += [baseline_name(n, b.inner_steps) for n in _resolutions(cfg)]
        check_reference(cfg.reference, names)
    return runs


def _resolutions(cfg) -> list:
    r = cfg.baseline.resolutions
    return [r] if isinstance(r, int) else list(r)


def _baseline_entries(cfg, data, rollout_steps, cache: dict) -> dict:
    b = cfg.baseline
    spec = read_solver_spec(data.path, b.pde)  # the data's equation, order, dealiasing
    out = {}
    for n in _resolutions(cfg):
        key = (str(data.path), int(n), int(b.inner_steps), rollout_steps, data.u.shape[0])
        if key not in cache:
            cache[key] = evaluate_baseline(
                data, resolution=int(n), inner_steps=int(b.inner_steps), rollout_steps=rollout_steps,
                steps=cfg.report_steps, pde=spec, bootstrap_resamples=int(cfg.bootstrap_resamples))
        out[baseline_name(n, b.inner_steps)] = cache[key]
    return out


def _figures(cfg, entries: dict, arrays: dict, data, out_dir: Path,
             compare: bool = False) -> list[str]:
    if not cfg.plots:
        return []
    figs = [plots.plot_curves(entries, out_dir / "curves.png")]
    name, first = next(iter(entries.items()))
    figs.append(plots.plot_spectra(first, out_dir / "spectra.png", name=name))
    if compare:
        figs.append(plots.plot_spectra_compare(entries, out_dir / "spectra_compare.png"))
    pred, ref = arrays["pred"], arrays["ref"]
    if data.spatial_dims == 1:
        figs.append(plots.plot_spacetime(pred, ref, float(data.dt[0]), out_dir / "spacetime.png"))
    elif data.spatial_dims == 2:
        steps = first["spectra"]["steps"]
        figs.append(plots.plot_snapshots(pred, ref, steps[-3:], out_dir / "snapshots.png"))
    if any("invariants" in s for s in entries.values()):
        figs.append(plots.plot_invariants(entries, out_dir / "invariants.png"))
    return [p.name for p in figs]


def _report(cfg, title: str, data, entries: dict, runs: dict, figures: list[str], *,
            fingerprint: str | None, reference: str | None = None,
            checks: dict | None = None) -> dict:
    first = next(iter(entries.values()))
    report = {
        "title": title, "split": cfg.split, "data": str(data.path), "pde": data.pde,
        "data_fingerprint": fingerprint,
        "num_trajectories": first["num_trajectories"], "dt": first["dt"],
        "rollout_steps": first["rollout_steps"], "compared_steps": first["compared_steps"],
        "reference": reference, "entries": entries, "runs": runs, "figures": figures,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if checks is not None:
        report["checks"] = checks
    return report


def _ratios(cfg, entries: dict) -> None:
    add_reference_ratios(entries, cfg.reference, bootstrap_resamples=int(cfg.bootstrap_resamples))


def _say(kind: str, msg: str) -> None:
    print(f"pdekit evaluate: {kind}: {msg}", file=sys.stderr)


def check_data(cfg, facts, path: Path) -> dict:
    """The run-vs-data checks of :mod:`pdekit.evaluation.checks` on ``path`` (refusals raise a
    one-line ``ValueError``); prints a note for a resolution transfer and a warning for an
    allowed evaluation on the training data."""
    if not path.exists():
        raise FileNotFoundError(f"evaluation data {path} does not exist")
    with open_trajectories(path) as tr:
        checks = check_against_run(facts, tr, path,
                                   allow_train_split=bool(cfg.allow_train_split))
    res = checks["resolution"]
    if res["transfer"]:
        _say("note", f"resolution transfer: {facts.model.rsplit('.', 1)[-1]} trained at "
                     f"{res['run']}, evaluated at {res['data']} ({path})")
    if not checks["pde"]["checked"]:
        _say("note", f"the run records no training PDE and its training file is unreadable; "
                     f"the PDE of {path} ({checks['pde']['data']!r}) is not checked")
    if checks["train_split"]:
        _say("warning", f"{path} is the run's training data (allow_train_split=true)")
    return checks


def _cond_checks(facts, data, cond_keys) -> list[dict]:
    found = cond_outside(facts, cond_keys, data.cond, data.params)
    for entry in found:
        _say("warning", cond_warning(entry))
    return found


def _evaluate_one(cfg, run_dir: Path, stage, cache: dict) -> dict:
    """Check, load and evaluate one run; stage its report. Returns what the comparison needs."""
    model, rcfg, stats = load_run(run_dir, which=cfg.which, ema=bool(cfg.ema))
    d = rcfg.data
    path = data_path_of(rcfg, cfg.split, cfg.data_path)
    facts = RunFacts.of_run(rcfg)
    checks = check_data(cfg, facts, path)
    data = load_eval_data(path, stats=stats, history=int(d.history), future=int(d.future),
                          stride=int(d.stride), cond_keys=list(d.cond_keys),
                          max_trajectories=cfg.max_trajectories)
    checks["cond_range"] = _cond_checks(facts, data, d.cond_keys)
    out_dir = report_dir_of(run_dir, data_label(rcfg, cfg.split, path, cfg.data_path),
                            data.fingerprint)
    tmp = stage.stage(out_dir)
    summary, arrays = evaluate_model(
        model, data, rollout_steps=cfg.rollout_steps, num_samples=int(cfg.num_samples),
        seed=int(cfg.seed), steps=cfg.report_steps, time_rollout=bool(cfg.time_rollout),
        bootstrap_resamples=int(cfg.bootstrap_resamples))
    name = run_name(run_dir)
    meta = {"dir": str(run_dir), "which": cfg.which, "ema": bool(cfg.ema),
            "model": facts.model, "data_fingerprint": data.fingerprint, "checks": checks}
    entries = {name: summary}
    baselines = {}
    if cfg.baseline.enabled:
        baselines = {k: v[0] for k, v in
                     _baseline_entries(cfg, data, summary["rollout_steps"], cache).items()}
    entries.update(baselines)
    single_ref = cfg.reference if len(_as_list(cfg.run)) == 1 else None
    if single_ref:
        _ratios(cfg, entries)
    figures = _figures(cfg, entries, arrays, data, tmp)
    write_report(_report(cfg, name, data, entries, {name: meta}, figures,
                         fingerprint=data.fingerprint, reference=single_ref, checks=checks), tmp)
    return {"name": name, "summary": summary, "meta": meta, "data": data, "arrays": arrays,
            "baselines": baselines, "out_dir": out_dir}


def _comparison_dir(cfg, run_dirs: list[Path]) -> Path:
    return Path(cfg.comparison_dir) if cfg.comparison_dir else (
        Path("runs") / "comparisons" / "__".join(Path(run_name(r)).name for r in run_dirs))


def _stage_comparison(cfg, results: list[dict], out_dir: Path, stage) -> None:
    combined = {r["name"]: r["summary"] for r in results}
    combined.update(results[0]["baselines"])
    runs_meta = {r["name"]: r["meta"] for r in results}
    prints = {m["data_fingerprint"] for m in runs_meta.values()}
    fingerprint = prints.pop() if len(prints) == 1 else None
    if cfg.reference:
        if fingerprint is None:
            raise ValueError("reference: the runs were evaluated on different data; a "
                             "paired ratio needs the same trajectories")
        _ratios(cfg, combined)
    tmp = stage.stage(out_dir)
    figures = _figures(cfg, combined, results[0]["arrays"], results[0]["data"], tmp,
                       compare=True)
    write_report(_report(cfg, cfg.title or "comparison", results[0]["data"], combined,
                         runs_meta, figures, fingerprint=fingerprint, reference=cfg.reference),
                 tmp)


def evaluate(cfg) -> list[Path]:
    """Evaluate every run of ``cfg.run`` (or merge the reports of ``cfg.merge``); return the
    report directories written. Every report set is staged and moved into place only when
    all of them are complete (:class:`pdekit.evaluation.publish.ReportStage`)."""
    run_dirs = check_config(cfg)
    if not run_dirs:
        return [merge(cfg)]
    compare_dir = _comparison_dir(cfg, run_dirs) if len(run_dirs) > 1 else None
    if compare_dir is not None:
        check_replaceable(compare_dir)
    cache: dict = {}
    with ReportStage() as stage:
        results = [_evaluate_one(cfg, r, stage, cache) for r in run_dirs]
        if compare_dir is not None:
            _stage_comparison(cfg, results, compare_dir, stage)
        written = stage.commit()
    for out_dir in written:
        print(f"pdekit evaluate: wrote {out_dir / 'report.md'}")
    return written


def merge(cfg) -> Path:
    """Merge mode: combine the ``report.json`` files of ``cfg.merge`` into one report in
    ``comparison_dir`` (figures from the summaries alone: curves, spectra_compare)."""
    report = merge_reports(_as_list(cfg.merge), title=cfg.title or "comparison")
    entries = report["entries"]
    if cfg.reference:
        _ratios(cfg, entries)
    report["reference"] = cfg.reference
    out_dir = Path(cfg.comparison_dir) if cfg.comparison_dir else (
        Path("runs") / "comparisons"
        / "__".join(["merged"] + [Path(s["entries"][0]).name for s in report["sources"]]))
    with ReportStage() as stage:
        tmp = stage.stage(out_dir)
        figures = []
        if cfg.plots:
            figures = [plots.plot_curves(entries, tmp / "curves.png").name,
                       plots.plot_spectra_compare(entries, tmp / "spectra_compare.png").name]
            if any("invariants" in s for s in entries.values()):
                figures.append(plots.plot_invariants(entries, tmp / "invariants.png").name)
        report["figures"] = figures
        report["config"] = OmegaConf.to_container(cfg, resolve=True)
        write_report(report, tmp)
        stage.commit()
    print(f"pdekit evaluate: wrote {out_dir / 'report.md'}")
    return out_dir
