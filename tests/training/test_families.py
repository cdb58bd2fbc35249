"""Every model family trains (loss goes down) through the same loop, on tiny data.

The preset cases are ``slow`` (one real-model compile each, 15-60 s of CPU); the NNX case
runs in the fast suite. Each case is a model preset from ``configs/model/`` with tiny hyperparameter overrides, plus
a Flax NNX module through ``pdekit.models.flax_adapter.from_nnx``.
"""

from __future__ import annotations

import pytest
from conftest import tiny_cfg
from omegaconf import OmegaConf

from pdekit.configs import compose
from pdekit.training import load_run, train
from pdekit.training.logs import read_metrics

UNET_TINY = {"hidden_channels": 8, "channel_multipliers": [1, 2], "num_blocks": 1}
CASES = {
    "fno1d": ({"width": 8, "modes": 4, "num_layers": 2, "projection_channels": 16}, {}),
    "unetmod1d_small": (UNET_TINY, {}),
    "mppde1d": ({"hidden": 16, "num_layers": 2}, {"history": 2, "future": 2}),
    # sigma_min 0.1: with the published 6.3e-4 the noise-prediction terms barely move in a
    # few dozen steps; the denoising objective and the loop are the same.
    "pderefiner_small": ({"backbone": UNET_TINY, "min_noise_std": 0.1}, {"objective": "refiner"}),
    "sinenet2": ({"hidden_channels": 8, "num_waves": 2, "num_levels": 2}, {}),
}


def preset(name: str, overrides: dict) -> dict:
    """Preset ``name`` as ``pdekit train model=<name>`` composes it, with ``overrides``."""
    base = compose("train", [f"model={name}"]).model
    return OmegaConf.to_container(OmegaConf.merge(base, overrides))


def _train_and_check(cfg, tmp_path, factor):
    train(cfg)
    recs = read_metrics(tmp_path / "test" / "default")
    first, last = recs[0]["train/loss"], recs[-1]["train/loss"]
    assert last < factor * first, (first, last)
    model, _, _ = load_run(tmp_path / "test" / "default", which="best")
    return model


@pytest.mark.slow  # compiling a real model's train step costs 15-60 s of CPU each
@pytest.mark.parametrize("name", list(CASES))
def test_preset_family_loss_decreases(name, ks_files, ns_files, tmp_path):
    hyper, extra = CASES[name]
    files = ns_files if name.startswith("sinenet") else ks_files
    data = {k: extra.pop(k) for k in ("history", "future") if k in extra}
    cfg = tiny_cfg(files, tmp_path, model=preset(name, hyper), steps=48, log_every=8,
                   valid_every=48, ckpt_every=48, **extra)
    cfg["data"].update(data, rollout_steps=2)
    _train_and_check(cfg, tmp_path, 0.8)


def test_flax_nnx_module_trains_end_to_end(ks_files, tmp_path):
    model_cfg = {"_target_": "pdekit.models.flax_adapter.from_nnx",
                 "module_factory": {"_target_": "toy_models.ToyNNX", "_partial_": True, "width": 8}}
    cfg = tiny_cfg(ks_files, tmp_path, model=model_cfg, steps=16, valid_every=16, ckpt_every=16,
                   predict_difference=True, difference_scale=0.3)
    model = _train_and_check(cfg, tmp_path, 0.8)
    assert type(model).__name__ == "Residual" and type(model.model).__name__ == "NNXAdapter"
