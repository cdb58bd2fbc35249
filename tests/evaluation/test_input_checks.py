"""`pdekit evaluate` checks what it is given: wrong PDE, channels, resolution, non-finite data
and the training split are refused (one line, exit 2) without touching the real report; report
directories are named by the data; report sets are written all-or-nothing."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from evalfixtures import make_trained_run, travelling_waves, write_h5

from pdekit.configs import compose
from pdekit.evaluation import publish
from pdekit.evaluation import report as report_mod
from pdekit.evaluation.checks import RunFacts, check_resolution, cond_outside
from pdekit.evaluation.compare import report_file
from pdekit.evaluation.jobs import evaluate
from pdekit.evaluation.publish import ReportStage

FAST = ["plots=false", "time_rollout=false", "bootstrap_resamples=20"]


def _tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (relative path -> bytes)."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny trained run with its real test report (plots on), and odd data files."""
    data = tmp_path_factory.mktemp("data")
    run = make_trained_run(data, tmp_path_factory.mktemp("runs"), validate=False)
    main([f"run={run}", "time_rollout=false", "bootstrap_resamples=20"])
    odd = tmp_path_factory.mktemp("odd")
    waves = travelling_waves(4, 25, seed=3)
    nan, inf = waves.copy(), waves.copy()
    nan[2, 7, 0, 3], inf[1, 0, 0, 0] = np.nan, np.inf
    files = {
        "burgers": write_h5(odd / "burgers.h5", waves, pde="burgers_forced"),
        "nan": write_h5(odd / "nan.h5", nan),
        "inf": write_h5(odd / "inf.h5", inf),
        "fine": write_h5(odd / "fine.h5", travelling_waves(4, 25, n=32, seed=3)),
        "two_channels": write_h5(odd / "two.h5", np.concatenate([waves, waves], axis=2)),
        "train_copy": Path(shutil.copy(data / "train.h5", odd / "renamed.h5")),
        "other": write_h5(odd / "other.h5", travelling_waves(3, 25, seed=9)),
    }
    return {"run": run, "data": data, "files": files}


def main(argv):
    """What ``pdekit evaluate <argv>`` does, through the library (tests/cli tests the command:
    its one-line errors and exit status)."""
    return evaluate(compose("evaluate", argv))


def _refused(capsys, args, *needles):
    with pytest.raises((ValueError, OSError)) as exc:
        main(args)
    err = str(exc.value).strip()
    assert err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("case, needles", [
    ("burgers", ["'burgers_forced' data", "trained on 'ks'"]),
    ("nan", ["non-finite", "1 of 4 trajectories (first: 2)"]),
    ("inf", ["non-finite", "(first: 1)"]),
    ("fine", ["resolution 32", "trained at 16", "TinyConv does not transfer"]),
    ("two_channels", ["2 channel(s)", "trained on 1"]),
    ("train_copy", ["the run's training data", "allow_train_split=true"]),
    ("train_file", ["the run's training data"]),
])
def test_refused_data_leave_the_real_report_untouched(env, capsys, case, needles):
    run = env["run"]
    before = _tree(run / "eval")
    assert len(before) == 5        # report.json, report.md and three figures of one test report
    path = env["data"] / "train.h5" if case == "train_file" else env["files"][case]
    _refused(capsys, [f"run={run}", f"data_path={path}", *FAST], *needles)
    assert _tree(run / "eval") == before                 # byte-identical, nothing added
    assert [p.name for p in (run / "eval").iterdir()] == [report_file(run / "eval" / "test").parent.name]


def test_split_train_needs_the_override_and_is_flagged(env, capsys):
    run = env["run"]
    _refused(capsys, [f"run={run}", "split=train", *FAST], "allow_train_split=true")
    main([f"run={run}", "split=train", "allow_train_split=true", "max_trajectories=2", *FAST])
    out = report_file(run / "eval" / "train").parent
    rep = json.loads((out / "report.json").read_text())
    assert rep["checks"]["train_split"] is True and rep["num_trajectories"] == 2
    assert out.name == f"train-{rep['data_fingerprint']}"
    assert "evaluated on the run's training data" in (out / "report.md").read_text()
    assert "is the run's training data" in capsys.readouterr().err
    shutil.rmtree(out)


def test_other_file_gets_its_own_directory(env):
    run = env["run"]
    real = report_file(run / "eval" / "test").parent
    before = _tree(real)
    main([f"run={run}", f"data_path={env['files']['other']}", *FAST])
    rep = json.loads(report_file(run / "eval" / "other").read_text())
    assert rep["num_trajectories"] == 3 and rep["data"].endswith("other.h5")
    assert rep["checks"]["pde"] == {"run": "ks", "data": "ks", "checked": True}
    assert rep["checks"]["resolution"] == {"run": [16], "data": [16], "transfer": False,
                                           "checked": True}
    assert rep["checks"]["train_split"] is False and rep["checks"]["cond_range"] == []
    assert _tree(real) == before
    # the run's own test file named through data_path is the test split: the same directory
    main([f"run={run}", f"data_path={env['data'] / 'test.h5'}", *FAST, "rollout_steps=3"])
    assert sorted(p.name for p in (run / "eval").iterdir()) == sorted(
        [real.name, report_file(run / "eval" / "other").parent.name])
    assert json.loads((real / "report.json").read_text())["rollout_steps"] == 3   # replaced
    assert not (real / "curves.png").exists()          # the old set is gone, not mixed in
    shutil.rmtree(report_file(run / "eval" / "other").parent)


def test_failed_write_keeps_the_old_report(env, monkeypatch, capsys):
    run = env["run"]
    before = _tree(run / "eval")

    def broken(report):
        raise RuntimeError("disk full while rendering")

    monkeypatch.setattr(report_mod, "render_markdown", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        main([f"run={run}", *FAST, "rollout_steps=4"])
    assert _tree(run / "eval") == before          # no partial report, no temporary left
    assert len(list((run / "eval").iterdir())) == 1


def test_several_runs_all_or_nothing(env, capsys, tmp_path):
    run = env["run"]
    burgers_data = tmp_path / "bdata"
    burgers_data.mkdir()
    shutil.copy(env["data"] / "train.h5", burgers_data / "train.h5")
    write_h5(burgers_data / "test.h5", travelling_waves(4, 25, seed=3), pde="burgers_forced")
    other = run.parent / "pointing_at_burgers"
    shutil.copytree(run, other, ignore=shutil.ignore_patterns("eval"))
    cfg = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(cfg.replace(str(env["data"] / "train.h5"),
                                                   str(burgers_data / "train.h5")))
    before = _tree(run / "eval")
    _refused(capsys, [f"run=[{run},{other}]", f"comparison_dir={tmp_path / 'cmp'}", *FAST],
             "'burgers_forced' data")
    assert _tree(run / "eval") == before and not (tmp_path / "cmp").exists()
    assert not (other / "eval").exists()
    shutil.rmtree(other)


def test_comparison_dir_with_foreign_files_is_refused(env, capsys, tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    _refused(capsys, [f"run=[{env['run']},{env['run']}]", f"comparison_dir={tmp_path}", *FAST],
             "holds files other than a report", "notes.txt")
    assert keep.read_text() == "mine"


def test_merge_prefix_is_ambiguous_with_two_test_reports(env, capsys, tmp_path):
    run = env["run"]
    main([f"run={run}", "max_trajectories=2", *FAST])
    tests = sorted(p.name for p in (run / "eval").glob("test-*"))
    assert len(tests) == 2
    _refused(capsys, [f"merge=[{run / 'eval' / 'test'}]", f"comparison_dir={tmp_path / 'm'}"],
             "matches several reports", tests[0], tests[1])
    main([f"merge=[{run / 'eval' / tests[0]}]", f"comparison_dir={tmp_path / 'm'}", "plots=false"])
    assert (tmp_path / "m" / "report.json").is_file()
    sizes = {t: json.loads((run / "eval" / t / "report.json").read_text())["num_trajectories"]
             for t in tests}
    assert sorted(sizes.values()) == [2, 4]
    shutil.rmtree(run / "eval" / next(t for t, n in sizes.items() if n == 2))


def test_cond_outside_training_range_warns_and_is_recorded(env, capsys, tmp_path):
    run = env["run"]
    derived = (run / "config.yaml").read_text()
    assert "cond_range:" in derived          # written by pdekit train (derived.cond_range)
    path = write_h5(tmp_path / "shifted.h5", travelling_waves(4, 25, seed=3))
    with h5py.File(path, "r+") as f:
        f["params/dt"][2] = 0.25             # model step 0.5 against the trained 0.4
    main([f"run={run}", f"data_path={path}", *FAST])
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if "outside the training range" in ln]
    assert len(warn) == 1 and warn[0].startswith("pdekit evaluate: warning: dt ")
    assert "[0.4, 0.4] for 1 of 4 trajectories" in warn[0]
    out = report_file(run / "eval" / "shifted").parent
    rep = json.loads((out / "report.json").read_text())
    (entry,) = rep["checks"]["cond_range"]
    assert entry["key"] == "dt" and entry["outside"] == 1 and entry["of"] == 4
    assert entry["range"] == pytest.approx([0.4, 0.4]) and entry["max"] == pytest.approx(0.5)
    assert "`dt` outside the training range" in (out / "report.md").read_text()
    shutil.rmtree(out)


def test_fno_evaluates_at_another_resolution_and_says_so(tmp_path, capsys):
    fno = {"_target_": "pdekit.models.fno.FNO", "width": 4, "modes": 3, "num_layers": 1,
           "projection_channels": 4}
    (tmp_path / "d").mkdir()
    run = make_trained_run(tmp_path / "d", tmp_path / "r", name="fno", steps=2, model=fno,
                           validate=False)
    fine = write_h5(tmp_path / "fine.h5", travelling_waves(4, 25, n=32, seed=3))
    main([f"run={run}", f"data_path={fine}", *FAST])
    assert "resolution transfer: FNO trained at [16], evaluated at [32]" in capsys.readouterr().err
    out = report_file(run / "eval" / "fine").parent
    rep = json.loads((out / "report.json").read_text())
    assert rep["checks"]["resolution"] == {"run": [16], "data": [32], "transfer": True,
                                           "checked": True}
    assert rep["runs"]["evaltest/fno"]["checks"]["resolution"]["transfer"] is True
    assert np.isfinite(rep["entries"]["evaltest/fno"]["at_steps"]["1"]["nrmse"]["mean"])
    assert "**resolution transfer** (evaltest/fno): evaluated at 32, trained at 16" in (
        out / "report.md").read_text()
    coarse = write_h5(tmp_path / "coarse.h5", travelling_waves(4, 25, n=4, seed=3))
    _refused(capsys, [f"run={run}", f"data_path={coarse}", *FAST], "modes=3 needs every axis >= 6")


def _facts(model="pdekit.models.fno.FNO", shape=(16,), modes=4, cond_range=None):
    return RunFacts(pde="ks", channels=1, spatial_shape=shape, model=model, modes=modes,
                    train_path=None, train_head=None, cond_range=cond_range or {})


def test_resolution_policy_per_model_family():
    assert check_resolution(_facts(), (32,), "f.h5")["transfer"] is True
    assert check_resolution(_facts(), (16,), "f.h5")["transfer"] is False
    with pytest.raises(ValueError, match="modes=4 needs every axis >= 8"):
        check_resolution(_facts(), (6,), "f.h5")
    for target in ("pdekit.models.unet.UNetMod", "pdekit.models.refiner.PDERefiner",
                   "pdekit.models.mppde.MPPDE", "pdekit.models.sinenet.SineNet"):
        with pytest.raises(ValueError, match=r"resolution 64x64 but the run was trained at 32x32"):
            check_resolution(_facts(target, (32, 32)), (64, 64), "f.h5")
    # runs without a recorded shape: not checked, and said so
    assert check_resolution(_facts(shape=None), (64,), "f.h5")["checked"] is False


def test_cond_outside_uses_params_for_keys_the_model_does_not_see():
    facts = _facts(cond_range={"nu": [0.5, 1.5], "dx": [0.1, 0.2]})
    params = {"nu": np.array([0.4, 1.0, 1.6, 1.5 + 1e-9])}
    cond = np.array([[0.15], [0.2], [0.1], [0.21]], np.float32)
    found = {e["key"]: e for e in cond_outside(facts, ["dx"], cond, params)}
    assert found["nu"]["outside"] == 2 and found["nu"]["of"] == 4    # 1.5 + 1e-9 is inside
    assert found["dx"]["outside"] == 1 and found["dx"]["max"] == pytest.approx(0.21)
    assert cond_outside(_facts(), ["dx"], cond, params) == []        # older runs: no ranges


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_swaps_whole_sets(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(publish, "_RENAMEAT2", None)
    elif publish._RENAMEAT2 is None:
        pytest.skip("no renameat2 on this platform")
    target = tmp_path / "eval" / "test-0123456789abcdef"
    target.mkdir(parents=True)
    (target / "report.json").write_text("old")
    (target / "curves.png").write_text("old figure")
    with ReportStage() as stage:
        tmp = stage.stage(target)
        (tmp / "report.json").write_text("new")
        assert (target / "report.json").read_text() == "old"   # not visible before commit
        if exchange:   # one atomic swap: the move-aside fallback must not be used
            monkeypatch.setattr(publish.os, "rename", None)
        stage.commit()
    assert _tree(target) == {"report.json": b"new"}
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_discarded_stage_removes_what_it_created(tmp_path):
    with pytest.raises(KeyError), ReportStage() as stage:
        tmp = stage.stage(tmp_path / "a" / "b" / "report")
        (tmp / "report.json").write_text("{}")
        raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []
