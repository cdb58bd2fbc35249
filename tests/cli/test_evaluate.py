"""`pdekit evaluate` end to end on a real tiny trained run, comparison, and bad input."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from evalfixtures import make_trained_run  # noqa: E402

from pdekit.cli.evaluate import main  # noqa: E402
from pdekit.evaluation.compare import report_file  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_trained_run(tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("runs"))


def test_evaluate_report_fields_and_numbers(run, capsys):
    main([f"run={run}", "rollout_steps=16", "baseline.enabled=true", "baseline.resolutions=[16]",
          "bootstrap_resamples=200", "report_steps=[1,12]"])
    out_dir = report_file(run / "eval" / "test").parent
    assert out_dir.name == "test-" + json.loads((out_dir / "report.json").read_text())["data_fingerprint"]
    for name in ("report.json", "report.md", "curves.png", "spectra.png", "spacetime.png"):
        assert (out_dir / name).stat().st_size > 0, name
    assert not list(out_dir.glob("*.tmp*"))
    rep = json.loads((out_dir / "report.json").read_text())
    assert rep["split"] == "test" and rep["data"].endswith("test.h5")
    assert rep["dt"]["mean"] == pytest.approx(0.4)           # stride 2 x saved dt 0.2
    assert (rep["num_trajectories"], rep["rollout_steps"], rep["compared_steps"]) == (4, 16, 12)
    assert list(rep["entries"]) == ["evaltest/tiny", "solver N=16 (1 sub-steps)"]
    model = rep["entries"]["evaltest/tiny"]
    for c in ("0.8", "0.9", "0.95"):
        tau = model["tau"][c]
        assert 0 <= tau["censored"] <= 4 and tau["n"] == 4
        assert 0.4 - 1e-6 <= tau["lo"] <= tau["mean"] <= tau["hi"] <= 4.8 + 1e-6
        assert tau["pdearena"] / 0.4 == pytest.approx(round(tau["pdearena"] / 0.4), abs=1e-4)
    assert list(model["at_steps"]) == ["1", "12"]
    assert model["at_steps"]["12"]["time"] == pytest.approx(4.8)
    assert model["long_horizon"]["steps"] == 4
    assert 0.0 <= model["stability"]["stable_fraction"] <= 1.0
    assert rep["entries"]["solver N=16 (1 sub-steps)"]["baseline"]["resolution"] == 16

    # the report's step-1 nRMSE and correlation, recomputed by hand from the restored model
    from pdekit.data import WindowDataset
    from pdekit.training.run import load_run

    mdl, cfg, stats = load_run(run)
    ds = WindowDataset(Path(cfg.data.train_path).with_name("test.h5"), history=1, future=1,
                       stride=2, cond_keys=["dt", "dx"], stats=stats)
    u, cond = ds.full_trajectories()
    pred = np.stack([np.asarray(mdl(u[i, :1], cond[i]))[0] for i in range(4)])
    pred, ref = np.asarray(stats.denormalize(pred)), np.asarray(stats.denormalize(u[:, 1]))
    err = np.linalg.norm((pred - ref).reshape(4, -1), axis=1) / np.linalg.norm(ref.reshape(4, -1), axis=1)
    rho = [np.corrcoef(p.ravel(), r.ravel())[0, 1] for p, r in zip(pred, ref, strict=True)]
    assert model["at_steps"]["1"]["nrmse"]["mean"] == pytest.approx(err.mean(), rel=1e-4)
    assert model["at_steps"]["1"]["rho"]["mean"] == pytest.approx(np.mean(rho), abs=1e-5)

    md = (out_dir / "report.md").read_text()
    assert "| evaltest/tiny |" in md and "| solver N=16 (1 sub-steps) |" in md
    assert "τ_0.9 PDEArena" in md and "Long horizon" in md
    assert "wrote" in capsys.readouterr().out


def test_compare_runs(run, tmp_path):
    other = run.parent / "tiny_copy"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("eval"))
    main([f"run=[{run},{other}]", f"comparison_dir={tmp_path / 'cmp'}", "plots=false",
          "bootstrap_resamples=100", "time_rollout=false"])
    rep = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert list(rep["entries"]) == ["evaltest/tiny", "evaltest/tiny_copy"]
    a, b = rep["entries"].values()
    assert a["tau"]["0.9"] == b["tau"]["0.9"]          # the same weights give the same numbers
    assert set(rep["runs"]) == {"evaltest/tiny", "evaltest/tiny_copy"}
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert md.count("| evaltest/tiny") == 2
    assert report_file(other / "eval" / "test").is_file()


@pytest.mark.parametrize("args, message", [
    ([], "run=<run dir> is required"),
    (["run=/no/such/run"], "not a run directory"),
    (["RUN", "split=bogus"], "split must be test or valid"),
    (["RUN", "split=train"], "pass allow_train_split=true"),
    (["RUN", "which=worst"], "which must be best or last"),
    (["RUN", "num_samples=0"], "num_samples must be a positive integer"),
    (["RUN", "baseline.enabled=true", "baseline.resolutions=[4]"], "baseline.resolutions"),
    (["RUN", "data_path=/no/such.h5"], "does not exist"),
    (["RUN", "no_such_key=1"], "bad overrides"),
])
def test_bad_input_one_line_exit_2(run, capsys, args, message):
    args = [f"run={run}" if a == "RUN" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pdekit evaluate: error:") and len(err.splitlines()) == 1
    assert message in err


def test_help_mentions_merge_and_reference(capsys):
    main(["--help"])
    text = capsys.readouterr().out
    assert "merge=[" in text and "reference=" in text
