"""``pdekit evaluate run=<run dir> [overrides...]`` (or ``run=[a,b,c]`` to compare runs).

Rolls each run's model out on its test (or valid) split, computes the metrics of
``docs/evaluation.md`` on physical fields, optionally runs the numerical baseline, and writes
``<run>/eval/<split>/report.{json,md}`` plus PNG figures; with several runs also a comparison
report in ``comparison_dir``. ``merge=[a/report.json,b/report.json]`` instead combines reports
written separately (no checkpoints needed); ``reference=<entry>`` adds paired τ ratios. Bad
input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pdekit.cli._common import CONFIG_DIR, cli_errors


def compose_config(overrides: list[str]):
    """Compose ``configs/evaluate.yaml`` with ``overrides``; bad input raises ``ValueError``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
            cfg = compose(config_name="evaluate", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"bad overrides: {first}") from None
    return cfg


def _given(cfg, key: str) -> bool:
    from omegaconf import OmegaConf

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
    if cfg.split not in ("test", "valid"):
        raise ValueError(f"split must be test or valid, got {cfg.split!r}")
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
        from pdekit.evaluation.compare import check_reference

        names = [run_name(r) for r in runs]
        if b.enabled:
            names += [baseline_name(n, b.inner_steps) for n in _resolutions(cfg)]
        check_reference(cfg.reference, names)
    return runs


def _resolutions(cfg) -> list:
    r = cfg.baseline.resolutions
    return [r] if isinstance(r, int) else list(r)


def baseline_name(resolution, inner_steps) -> str:
    return f"solver N={resolution} ({inner_steps} sub-steps)"


def data_path_of(run_cfg, split: str, override=None) -> Path:
    """The evaluation file: ``data_path`` override, ``data.<split>_path``, else ``test.h5``
    beside ``data.train_path`` (configs without a ``test_path`` key)."""
    if override:
        return Path(str(override))
    d = run_cfg.data
    path = d.get(f"{split}_path")
    if path:
        return Path(str(path))
    if split == "test" and d.get("train_path"):
        return Path(str(d.train_path)).with_name("test.h5")
    raise ValueError(f"the run config has no data.{split}_path; pass data_path=<file>")


def run_name(path: Path) -> str:
    parts = path.resolve().parts
    return "/".join(parts[-2:])


def _baseline_entries(cfg, data, n_steps, cache: dict) -> dict:
    from pdekit.evaluation.runner import evaluate_baseline

    b = cfg.baseline
    out = {}
    for n in _resolutions(cfg):
        key = (str(data.path), int(n), int(b.inner_steps), n_steps, data.u.shape[0])
        if key not in cache:
            cache[key] = evaluate_baseline(
                data, resolution=int(n), inner_steps=int(b.inner_steps), rollout_steps=n_steps,
                steps=cfg.report_steps, pde=b.pde, n_resamples=int(cfg.bootstrap_resamples))
        out[baseline_name(n, b.inner_steps)] = cache[key]
    return out


def _figures(cfg, entries: dict, arrays: dict, data, out_dir: Path,
             compare: bool = False) -> list[str]:
    if not cfg.plots:
        return []
    from pdekit.evaluation import plots

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
    return [p.name for p in figs]


def _report(cfg, title: str, data, entries: dict, runs: dict, figures: list[str], *,
            fingerprint: str | None, reference: str | None = None) -> dict:
    from omegaconf import OmegaConf

    first = next(iter(entries.values()))
    return {
        "title": title, "split": cfg.split, "data": str(data.path), "pde": data.pde,
        "data_fingerprint": fingerprint,
        "num_trajectories": first["num_trajectories"], "dt": first["dt"],
        "rollout_steps": first["rollout_steps"], "compared_steps": first["compared_steps"],
        "reference": reference, "entries": entries, "runs": runs, "figures": figures,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def _ratios(cfg, entries: dict) -> None:
    from pdekit.evaluation.compare import add_reference_ratios

    add_reference_ratios(entries, cfg.reference, n_resamples=int(cfg.bootstrap_resamples))


def evaluate(cfg) -> list[Path]:
    """Evaluate every run of ``cfg.run`` (or merge the reports of ``cfg.merge``); return the
    report directories written."""
    from pdekit.evaluation.report import write_report
    from pdekit.evaluation.runner import evaluate_model, load_eval_data
    from pdekit.training.run import load_run

    run_dirs = check_config(cfg)
    if not run_dirs:
        return [merge(cfg)]
    cache: dict = {}
    written, combined, combined_arrays, first_data, first_baselines = [], {}, None, None, {}
    runs_meta = {}
    single_ref = cfg.reference if len(run_dirs) == 1 else None
    for run_dir in run_dirs:
        model, rcfg, stats = load_run(run_dir, which=cfg.which, ema=bool(cfg.ema))
        d = rcfg.data
        path = data_path_of(rcfg, cfg.split, cfg.data_path)
        data = load_eval_data(path, stats=stats, history=int(d.history), future=int(d.future),
                              stride=int(d.stride), cond_keys=list(d.cond_keys),
                              max_trajectories=cfg.max_trajectories)
        summary, arrays = evaluate_model(
            model, data, rollout_steps=cfg.rollout_steps, num_samples=int(cfg.num_samples),
            seed=int(cfg.seed), steps=cfg.report_steps, time_rollout=bool(cfg.time_rollout),
            n_resamples=int(cfg.bootstrap_resamples))
        name = run_name(run_dir)
        meta = {"dir": str(run_dir), "which": cfg.which, "ema": bool(cfg.ema),
                "model": str(rcfg.model.get("_target_", "?")), "data_fingerprint": data.fingerprint}
        runs_meta[name] = meta
        entries = {name: summary}
        baselines = {}
        if cfg.baseline.enabled:
            baselines = {k: v[0] for k, v in _baseline_entries(cfg, data, summary["rollout_steps"], cache).items()}
        entries.update(baselines)
        if single_ref:
            _ratios(cfg, entries)
        out_dir = run_dir / "eval" / cfg.split
        figures = _figures(cfg, entries, arrays, data, out_dir)
        write_report(_report(cfg, name, data, entries, {name: meta}, figures,
                             fingerprint=data.fingerprint, reference=single_ref), out_dir)
        written.append(out_dir)
        combined[name] = summary
        if first_data is None:
            first_data, combined_arrays, first_baselines = data, arrays, baselines
        print(f"pdekit evaluate: wrote {out_dir / 'report.md'}")
    if len(run_dirs) > 1:
        names = [Path(n).name for n in combined]
        out_dir = Path(cfg.comparison_dir) if cfg.comparison_dir else (
            Path("runs") / "comparisons" / "__".join(names))
        combined.update(first_baselines)
        prints = {m["data_fingerprint"] for m in runs_meta.values()}
        fingerprint = prints.pop() if len(prints) == 1 else None
        if cfg.reference:
            if fingerprint is None:
                raise ValueError("reference: the runs were evaluated on different data; a "
                                 "paired ratio needs the same trajectories")
            _ratios(cfg, combined)
        figures = _figures(cfg, combined, combined_arrays, first_data, out_dir, compare=True)
        write_report(_report(cfg, cfg.title or "comparison", first_data, combined, runs_meta,
                             figures, fingerprint=fingerprint, reference=cfg.reference), out_dir)
        written.append(out_dir)
        print(f"pdekit evaluate: wrote {out_dir / 'report.md'}")
    return written


def merge(cfg) -> Path:
    """Merge mode: combine the ``report.json`` files of ``cfg.merge`` into one report in
    ``comparison_dir`` (figures from the summaries alone: curves, spectra_compare)."""
    from omegaconf import OmegaConf

    from pdekit.evaluation.compare import merge_reports
    from pdekit.evaluation.report import write_report

    report = merge_reports(_as_list(cfg.merge), title=cfg.title or "comparison")
    entries = report["entries"]
    if cfg.reference:
        _ratios(cfg, entries)
    report["reference"] = cfg.reference
    out_dir = Path(cfg.comparison_dir) if cfg.comparison_dir else (
        Path("runs") / "comparisons"
        / "__".join(["merged"] + [Path(s["entries"][0]).name for s in report["sources"]]))
    figures = []
    if cfg.plots:
        from pdekit.evaluation import plots

        figures = [plots.plot_curves(entries, out_dir / "curves.png").name,
                   plots.plot_spectra_compare(entries, out_dir / "spectra_compare.png").name]
    report["figures"] = figures
    report["config"] = OmegaConf.to_container(cfg, resolve=True)
    write_report(report, out_dir)
    print(f"pdekit evaluate: wrote {out_dir / 'report.md'}")
    return out_dir


def _help() -> str:
    return "\n".join([
        "usage: pdekit evaluate run=<run dir> [key=value ...]",
        "       pdekit evaluate run=[<run a>,<run b>] comparison_dir=<dir> [reference=<entry>]",
        "       pdekit evaluate merge=[<a>/report.json,<b>/report.json] comparison_dir=<dir>",
        "                       [reference=<entry>] [title=<title>]",
        "",
        "keys: split=test|valid, which=best|last, ema, rollout_steps, num_samples, seed,",
        "      max_trajectories, data_path, report_steps, plots, comparison_dir, title,",
        "      baseline.enabled, baseline.resolutions=[64,128,256], baseline.inner_steps",
        "merge: combine report.json files (or directories holding one) written by separate",
        "      runs of pdekit evaluate on the same data (same data_fingerprint and split, same",
        "      compared horizon in time) into one comparison report; exactly one of run= / merge=",
        "reference: an entry name (e.g. ks_mse_unet/default); adds the τ ratio of every other",
        "      entry vs it (paired bootstrap 95% CI over the same trajectories)",
        "metrics: docs/evaluation.md",
    ])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(_help())
        return
    with cli_errors("evaluate"):
        evaluate(compose_config(argv))


if __name__ == "__main__":
    main()
