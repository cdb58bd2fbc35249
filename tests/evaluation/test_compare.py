"""Per-trajectory τ, data fingerprints, the paired ratio bootstrap and `evaluate merge=`."""

import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from evalfixtures import make_trained_run, travelling_waves, write_h5

from pdekit.configs import compose
from pdekit.data import NormStats
from pdekit.evaluation import metrics as M
from pdekit.evaluation.compare import report_file, same_content
from pdekit.evaluation.jobs import evaluate
from pdekit.evaluation.pipeline import compute_metrics, summarize_metrics
from pdekit.evaluation.runner import data_fingerprint, load_eval_data
from pdekit.evaluation.stats import paired_ratio_ci

SOLVER = "solver N=16 (1 sub-steps)"


# --- per-trajectory τ -------------------------------------------------------------------

def test_tau_values_are_the_first_crossing_times():
    rng = np.random.default_rng(3)
    b, t, n = 6, 10, 32
    ref = rng.normal(size=(b, t + 1, 1, n)).astype(np.float32)
    growth = rng.uniform(0.05, 0.4, size=(b, 1, 1, 1))     # each trajectory decorrelates at its own rate
    steps = np.arange(1, t + 1)[None, :, None, None]
    pred = ref[:, 1:] + (growth * steps * rng.normal(size=(b, t, 1, n))).astype(np.float32)
    dt = np.array([0.1, 0.2, 0.25, 0.1, 0.3, 0.15])
    raw = compute_metrics(jnp.asarray(pred), jnp.asarray(ref), jnp.asarray(dt), history=1,
                          spatial_dims=1)
    s = summarize_metrics(raw, dt, rollout_steps=t, bootstrap_resamples=50)
    rho = np.asarray(raw["rho"])
    for c in (0.8, 0.9, 0.95):
        values = np.asarray(s["tau"][f"{c:g}"]["values"])
        expected = np.asarray(M.first_crossing_time(raw["rho"], c, jnp.asarray(dt))[0])
        np.testing.assert_allclose(values, expected, rtol=1e-6)
        # the same by hand: first 1-based step with rho < c, else the rollout length
        by_hand = [dt[i] * (np.argmax(rho[i] < c) + 1 if (rho[i] < c).any() else t)
                   for i in range(b)]
        np.testing.assert_allclose(values, by_hand, rtol=1e-6)
        assert s["tau"][f"{c:g}"]["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert len(set(np.round(s["tau"]["0.9"]["values"], 6))) > 2   # a non-trivial case


# --- the paired ratio ---------------------------------------------------------------------

def test_paired_ratio_exact_multiple():
    b = np.random.default_rng(0).uniform(1.0, 3.0, 50)
    r = paired_ratio_ci(1.3 * b, b)
    assert r["n"] == 50
    for k in ("ratio", "lo", "hi"):
        assert r[k] == pytest.approx(1.3, rel=1e-12)


def test_paired_ratio_two_trajectories_by_hand():
    # after dropping the third (non-finite) trajectory: a = [1, 3], b = [1, 1]; a resample
    # picks (0,0), (0,1), (1,0) or (1,1): ratios 1, 2, 2, 3 with probability 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles of 1000 resamples are 1 and 3
    r = paired_ratio_ci([1.0, 3.0, np.nan], [1.0, 1.0, 5.0])
    assert r == {"ratio": 2.0, "lo": 1.0, "hi": 3.0, "n": 2}
    assert paired_ratio_ci([1.0, 3.0, None], [1.0, 1.0, 5.0]) == r       # JSON null = dropped
    assert paired_ratio_ci([np.inf], [1.0]) == {"ratio": None, "lo": None, "hi": None, "n": 0}
    with pytest.raises(ValueError, match="same length"):
        paired_ratio_ci([1.0, 2.0], [1.0])


def test_paired_ratio_matches_an_independent_numpy_bootstrap():
    rng = np.random.default_rng(11)
    b = rng.uniform(1.0, 2.0, 20)
    a = 1.3 * b + rng.normal(0, 0.3, 20)
    r = paired_ratio_ci(a, b, bootstrap_resamples=500, seed=7, level=0.9)
    idx = np.random.default_rng(7).integers(0, 20, size=(500, 20))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    assert r["ratio"] == pytest.approx(a.mean() / b.mean(), rel=1e-12)
    assert r["lo"] == pytest.approx(np.quantile(ratios, 0.05), rel=1e-12)
    assert r["hi"] == pytest.approx(np.quantile(ratios, 0.95), rel=1e-12)
    # pairing matters: resampling a and b independently gives a wider interval here
    idx2 = np.random.default_rng(8).integers(0, 20, size=(500, 20))
    unpaired = a[idx].mean(axis=1) / b[idx2].mean(axis=1)
    assert r["hi"] - r["lo"] < np.diff(np.quantile(unpaired, [0.05, 0.95]))[0]


# --- data fingerprint ---------------------------------------------------------------------

def test_fingerprint_of_the_stored_data(tmp_path):
    u = travelling_waves(5, 21, seed=4)
    kw = dict(history=1, future=1, stride=2, cond_keys=["dt"])
    s1 = NormStats(mean=np.zeros(1), std=np.ones(1), diff_mean=np.zeros(1), diff_std=np.ones(1))
    s2 = NormStats(mean=np.full(1, 0.3), std=np.full(1, 0.7), diff_mean=np.zeros(1),
                   diff_std=np.ones(1))
    d1 = load_eval_data(write_h5(tmp_path / "a.h5", u), stats=s1, **kw)
    d2 = load_eval_data(write_h5(tmp_path / "b.h5", u), stats=s2, **kw)   # same data, other stats
    assert d1.fingerprint == d2.fingerprint == data_fingerprint(u)  # all saved frames
    assert len(d1.fingerprint) == 16 and d1.u.shape == (5, 11, 1, 16)
    # the metrics' reference is the stored data itself (no normalise/denormalise round trip);
    # the model's input is its normalisation by the run's statistics
    np.testing.assert_array_equal(d2.u, u[:, ::2].astype(np.float32))
    np.testing.assert_allclose(d2.u_norm, (u[:, ::2] - 0.3) / 0.7, rtol=1e-6, atol=1e-6)
    every = load_eval_data(tmp_path / "a.h5", stats=s1, **{**kw, "stride": 1})
    assert every.fingerprint == d1.fingerprint  # the stride does not change the data
    part = load_eval_data(tmp_path / "a.h5", stats=s1, max_trajectories=3, **kw)
    assert part.fingerprint == data_fingerprint(u[:3]) != d1.fingerprint
    other = load_eval_data(write_h5(tmp_path / "c.h5", travelling_waves(5, 21, seed=5)),
                           stats=s1, **kw)
    assert other.fingerprint != d1.fingerprint
    assert data_fingerprint(u[:, ::2]) != data_fingerprint(u[:, ::2].reshape(5, 11, 16, 1))


# --- merge of separately written reports ----------------------------------------------------

@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Two runs trained and evaluated separately (own data directories, like separate GPU
    calls), each report with the solver baseline; the report directories are copied aside."""
    root = tmp_path_factory.mktemp("runs")
    keep = tmp_path_factory.mktemp("reports")
    out = {}
    for name, steps in (("short", 80), ("long", 120)):
        run = make_trained_run(tmp_path_factory.mktemp(f"data_{name}"), root, name=name,
                               steps=steps, lr=1e-2, test_trajectories=16)
        main([f"run={run}", "baseline.enabled=true", "baseline.resolutions=[16]",
              "bootstrap_resamples=200", "time_rollout=false", "plots=false"])
        out[name] = shutil.copytree(report_file(run / "eval" / "test").parent, keep / name)
        out[f"run_{name}"] = run
    return out


def _values(report_dir, entry, c):
    rep = json.loads((Path(report_dir) / "report.json").read_text())
    return np.asarray(rep["entries"][entry]["tau"][c]["values"])


def test_merge_with_reference(reports, tmp_path, capsys):
    out = tmp_path / "merged"
    main([f"merge=[{reports['short']},{reports['long'] / 'report.json'}]",
          f"comparison_dir={out}", "reference=evaltest/short", "title=tiny merge",
          "bootstrap_resamples=200"])
    for name in ("report.json", "report.md", "curves.png", "spectra_compare.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob("*.tmp*"))
    rep = json.loads((out / "report.json").read_text())
    a = json.loads((reports["short"] / "report.json").read_text())
    assert rep["data_fingerprint"] == a["data_fingerprint"] and len(rep["data_fingerprint"]) == 16
    # the identical baseline of both reports is kept once
    assert list(rep["entries"]) == ["evaltest/short", SOLVER, "evaltest/long"]
    assert rep["title"] == "tiny merge" and rep["reference"] == "evaltest/short"
    assert [s["title"] for s in rep["sources"]] == ["evaltest/short", "evaltest/long"]
    assert "ratio_vs_reference" not in rep["entries"]["evaltest/short"]
    md = (out / "report.md").read_text()
    assert "## τ ratio vs evaltest/short" in md
    for c in ("0.8", "0.9"):
        va, vb = _values(reports["short"], "evaltest/short", c), _values(reports["long"], "evaltest/long", c)
        assert va.shape == (16,)
        r = rep["entries"]["evaltest/long"]["ratio_vs_reference"][c]
        idx = np.random.default_rng(0).integers(0, 16, size=(200, 16))
        ratios = vb[idx].mean(axis=1) / va[idx].mean(axis=1)
        assert r["n"] == 16
        assert r["ratio"] == pytest.approx(vb.mean() / va.mean(), rel=1e-12)
        assert r["lo"] == pytest.approx(np.quantile(ratios, 0.025), rel=1e-12)
        assert r["hi"] == pytest.approx(np.quantile(ratios, 0.975), rel=1e-12)
        assert r["ratio"] > 1.2        # 120 training steps hold the correlation longer than 80
        assert f"{r['ratio']:.3g} [{r['lo']:.3g}, {r['hi']:.3g}]" in md
        assert "ratio_vs_reference" in rep["entries"][SOLVER]
    assert "wrote" in capsys.readouterr().out


def test_compare_runs_with_reference_matches_merge(reports, tmp_path):
    out = tmp_path / "cmp"
    main([f"run=[{reports['run_short']},{reports['run_long']}]", f"comparison_dir={out}",
          "reference=evaltest/short", "bootstrap_resamples=200", "time_rollout=false"])
    assert (out / "spectra_compare.png").stat().st_size > 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["data_fingerprint"] == json.loads(
        (reports["short"] / "report.json").read_text())["data_fingerprint"]
    assert "spectra_compare.png" in rep["figures"]
    va = _values(reports["short"], "evaltest/short", "0.9")
    vb = _values(reports["long"], "evaltest/long", "0.9")
    expected = paired_ratio_ci(vb, va, bootstrap_resamples=200)
    assert rep["entries"]["evaltest/long"]["ratio_vs_reference"]["0.9"] == expected
    assert "## τ ratio vs evaltest/short" in (out / "report.md").read_text()


def _edited_copy(src: Path, dst: Path, edit) -> Path:
    rep = json.loads((src / "report.json").read_text())
    edit(rep)
    dst.mkdir(parents=True)
    (dst / "report.json").write_text(json.dumps(rep))
    return dst / "report.json"


def test_duplicate_name_with_other_content_is_renamed(reports, tmp_path):
    def edit(rep):
        rep["entries"][SOLVER]["tau"]["0.9"]["mean"] *= 2
        rep["entries"][SOLVER]["timing"]["rollout_wall_s"] = 123.0
    other = _edited_copy(reports["long"], tmp_path / "x", edit)
    main([f"merge=[{reports['short']},{other}]", f"comparison_dir={tmp_path / 'm'}", "plots=false"])
    rep = json.loads((tmp_path / "m" / "report.json").read_text())
    assert list(rep["entries"]) == ["evaltest/short", SOLVER, "evaltest/long",
                                    f"{SOLVER} [evaltest/long]"]
    assert rep["sources"][1]["renamed"] == {SOLVER: f"{SOLVER} [evaltest/long]"}
    assert not list((tmp_path / "m").glob("*.png")) and rep["reference"] is None
    # timings alone do not make entries different
    a = rep["entries"][SOLVER]
    assert same_content(a, {**a, "timing": {"rollout_wall_s": 9.0}})
    assert not same_content(a, {**a, "num_trajectories": 17})


def main(argv):
    """What ``pdekit evaluate <argv>`` does, through the library (tests/cli tests the command:
    its one-line errors and exit status)."""
    return evaluate(compose("evaluate", argv))


def _fails(args, capsys) -> str:
    with pytest.raises((ValueError, OSError)) as exc:
        main(args)
    err = str(exc.value).strip()
    assert err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("key, value, words", [
    ("data_fingerprint", "0123456789abcdef", "differ in data_fingerprint"),
    ("compared_steps", 7, "differ in the compared horizon"), ("split", "valid", "differ in split")])
def test_merge_refuses_different_evaluations(reports, tmp_path, capsys, key, value, words):
    other = _edited_copy(reports["long"], tmp_path / "x", lambda rep: rep.update({key: value}))
    err = _fails([f"merge=[{reports['short']},{other}]", f"comparison_dir={tmp_path / 'm'}"], capsys)
    assert words in err and str(other) in err
    assert str(reports["short"] / "report.json") in err
    assert not (tmp_path / "m").exists()


def test_merge_bad_input(reports, tmp_path, capsys):
    short = reports["short"]
    err = _fails([f"merge=[{short},{tmp_path / 'nope' / 'report.json'}]"], capsys)
    assert "nope/report.json does not exist" in err
    bad = tmp_path / "bad" / "report.json"
    bad.parent.mkdir()
    bad.write_text('{"entries": {')
    assert "is not valid JSON" in _fails([f"merge=[{short},{bad}]"], capsys)
    bad.write_text('{"title": "x"}')
    assert "is not an evaluation report" in _fails([f"merge=[{short},{bad}]"], capsys)
    err = _fails([f"merge=[{short}]", "reference=evaltest/nope"], capsys)
    assert f"reference='evaltest/nope' is not an entry; available: 'evaltest/short', '{SOLVER}'" in err
    err = _fails([f"run={reports['run_short']}", f"merge=[{short}]"], capsys)
    assert "not both" in err
    assert "merge=" in _fails([], capsys)
    err = _fails([f"run={reports['run_short']}", "reference=evaltest/other"], capsys)
    assert "available: 'evaltest/short'" in err

