"""The resolved KS study configs against the parity table in docs/models.md (reference:
pdearena/pdearena at 78a8b03, configs/kuramotosivashinsky1d.yaml and models/pderefiner.py)."""

import math

import pytest
from hydra import compose, initialize_config_dir

from pdekit.configs import package_dir

CONFIGS = package_dir()

#: every non-refiner-specific row of the table (both experiments)
SHARED = {
    "data.history": 1, "data.future": 1, "data.stride": 4, "data.cond_keys": ["dt", "dx"],
    "data.normalization": "none", "data.cond_span": 5.0,
    "train.lr": 1e-4, "train.weight_decay": 0.0, "train.b1": 0.9, "train.b2": 0.999,
    "train.warmup_steps": 0, "train.min_lr_ratio": 0.01, "train.grad_clip": 0.0,
    "train.ema_decay": 0.995, "train.ema_warmup": False, "train.precision": "fp32",
    "train.batch_size": 128,
}
#: the refiner-specific rows
REFINER = {
    "train.objective": "refiner", "train.predict_difference": False,
    "model._target_": "pdekit.models.refiner.PDERefiner", "model.num_refinement_steps": 3,
    "model.min_noise_std": math.sqrt(4e-7), "model.first_input": "noise",
    "model.step_span": 1000.0, "model.predict_difference": True,
    "model.difference_scale": 0.3, "model.backbone._target_": "pdekit.models.unet.UNetMod",
    "model.backbone.hidden_channels": 64, "model.backbone.channel_multipliers": [1, 2, 2, 4],
}
MSE = {
    "train.objective": "mse", "train.predict_difference": True, "train.difference_scale": 0.3,
    "model._target_": "pdekit.models.unet.UNetMod", "model.hidden_channels": 64,
    "model.channel_multipliers": [1, 2, 2, 4],
}


def resolved(experiment: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose(config_name="train", overrides=[f"experiment={experiment}"])


def value(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return list(node) if hasattr(node, "__len__") and not isinstance(node, str) else node


@pytest.mark.parametrize("experiment,specific", [("ks_pderefiner", REFINER), ("ks_mse_unet", MSE)])
def test_study_configs_match_the_parity_table(experiment, specific):
    cfg = resolved(experiment)
    for key, want in {**SHARED, **specific}.items():
        got = value(cfg, key)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-9), key
        else:
            assert got == want, key
    assert "cond_scale" not in cfg.model and "cond_scale" not in cfg.model.get("backbone", {})


def test_the_two_study_configs_differ_only_in_refiner_specific_keys():
    a, b = resolved("ks_pderefiner"), resolved("ks_mse_unet")
    for section in ("data",):
        assert a[section] == b[section]
    ta, tb = dict(a.train), dict(b.train)
    differ = {k for k in ta if ta[k] != tb.get(k)}
    assert differ == {"objective", "predict_difference", "difference_scale"}, differ
