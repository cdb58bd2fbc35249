"""The 2D study: matched-size presets, its experiments, and summarize.py's table on known inputs."""

import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from pdekit.configs import compose
from pdekit.training.config import validate
from pdekit.training.model import abstract_model

SCRIPT = Path(__file__).parents[2] / "experiments" / "ns2d_study" / "summarize.py"
KOLMOGOROV = OmegaConf.create({"spatial_dims": 2, "channels": 1, "num_cond": 2})


def _n(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree) if isinstance(x, jax.ShapeDtypeStruct))


@pytest.mark.parametrize("experiment,count", [("ns2d_unet35m", 36_667_457),
                                              ("ns2d_fno35m", 34_693_953)])
def test_matched_presets_count_near_sinenet8(experiment, count):
    """Pinned counts on Kolmogorov flow (history 4, 1 channel, dt and dx): within 3.5 % of
    sinenet8's 35,484,457 on the same data."""
    cfg = validate(compose("train", [f"experiment={experiment}"]))
    assert cfg.run.experiment == experiment and cfg.train.batch_size == 32
    model = abstract_model(cfg, KOLMOGOROV, jax.random.key(0))
    assert _n(model) == count
    assert abs(count / 35_484_457 - 1) < 0.035


def test_padding_ablation_is_sinenet8_with_zero_padding():
    cfg = validate(compose("train", ["experiment=ns2d_sinenet_zeros"]))
    assert (cfg.train.lr, cfg.train.batch_size, cfg.data.history) == (2e-4, 32, 4)
    assert cfg.model.padding == "zeros" and cfg.model.num_waves == 8


@pytest.fixture(scope="module")
def summ():
    spec = importlib.util.spec_from_file_location("ns2d_summarize", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _s(v) -> dict:
    v = np.asarray(v, float)
    return {"mean": float(v.mean()), "lo": float(v.min()), "hi": float(v.max()),
            "median": float(np.median(v))}


def _entry(tau, stable=4, z=1.0):
    tau = np.asarray(tau, float)
    at = {str(j): {"time": 0.1 * j, "nrmse": _s([0.1 * j]), "rho": _s([1.0])} for j in (1, 5, 10)}
    inv = {str(j): {"time": 0.1 * j, "enstrophy_ratio": _s([z]), "energy_ratio": _s([z]),
                    "enstrophy_ref": _s([1.0]), "energy_ref": _s([1.0])} for j in (1, 5, 10)}
    return {"tau": {c: {**_s(tau * f), "values": (tau * f).tolist(), "censored": 0,
                        "pdearena": float(tau.mean() * f)} for c, f in (("0.8", 1.0), ("0.9", 0.5))},
            "stability": {"stable_fraction": stable / 4, "num_blown_up": 4 - stable},
            "num_trajectories": 4, "compared_steps": 10, "dt": {"mean": 0.1}, "at_steps": at,
            "invariants": {"at_steps": inv}, "timing": {"rollout_wall_s": 1.5}}


def _point(root: Path, exp: str, steps: int, seed: int, entry: dict, *, rate=None, peak=None,
           baseline=None):
    run = root / exp / f"steps{steps}_seed{seed}"
    (run / "eval" / "test-0123456789abcdef").mkdir(parents=True)
    entries = {f"{exp}/{run.name}": entry, **({"solver N=64 (16 sub-steps)": baseline} if baseline else {})}
    (run / "eval" / "test-0123456789abcdef" / "report.json").write_text(
        json.dumps({"data_fingerprint": "f", "entries": entries}))
    (run / "config.yaml").write_text(yaml.safe_dump({"derived": {"num_params": 35_000_000}}))
    if rate:
        (run / "metrics.jsonl").write_text("\n".join(
            json.dumps({"step": 50 * (i + 1), "steps_per_s": r}) for i, r in enumerate(rate)))
    if peak is not None:
        (root / exp / f"{run.name}.memory.json").write_text(json.dumps({"peak_bytes_in_use": peak}))


def test_summary_table_ratios_seeds_and_ablation(summ, tmp_path):
    unet = [10.0, 12.0, 8.0, 10.0]
    base = _entry([5.0, 5.0, 5.0, 5.0])
    base["baseline"] = {"wall_s": 0.5, "resolution": 64, "inner_steps": 16}
    _point(tmp_path, "ns2d_unet35m", 100, 0, _entry(unet), rate=[10, 20, 30], peak=2 * 2**30,
           baseline=base)
    _point(tmp_path, "ns2d_unet35m", 100, 1, _entry(unet))
    _point(tmp_path, "ns2d_sinenet", 100, 0, _entry([2 * t for t in unet], z=0.5))
    _point(tmp_path, "ns2d_sinenet", 100, 1, _entry([3 * t for t in unet]))
    _point(tmp_path, "ns2d_sinenet_zeros", 100, 0, _entry(unet, stable=3))
    _point(tmp_path, "ns2d_fno35m", 100, 0, _entry([t / 2 for t in unet]))
    points = summ.collect(tmp_path)
    assert len(points) == 6
    md, rows = summ.table(points)
    by = {(r.get("experiment"), r.get("seed")): r for r in rows}
    assert by[("ns2d_sinenet", 0)]["ratio_vs_unet"]["0.8"]["ratio"] == pytest.approx(2.0)
    assert by[("ns2d_sinenet", 1)]["ratio_vs_unet"]["0.8"]["lo"] == pytest.approx(3.0)
    assert by[("ns2d_fno35m", 0)]["ratio_vs_unet"]["0.9"]["ratio"] == pytest.approx(0.5)
    assert by[("ns2d_unet35m", 0)]["ratio_vs_unet"]["0.8"] is None  # the reference itself
    assert by[("ns2d_unet35m", 0)]["steps_per_s"] == 20 and "| 2.0 |" in md
    solver = next(r for r in rows if "baseline" in r)
    assert solver["ratio_vs_unet"]["0.8"]["ratio"] == pytest.approx(0.5)
    assert solver["solve_wall_s"] == 0.5
    assert "| 3/4 |" in md and "0.5 [0.5, 0.5]" in md  # stable count, enstrophy ratio
    text, spread = summ.seeds_and_ablation(points)
    assert spread["padding"][0]["ratio"]["0.8"]["ratio"] == pytest.approx(0.5)
    assert spread["seeds"][0]["experiment"] == "ns2d_sinenet" and "padding ablation" in text
