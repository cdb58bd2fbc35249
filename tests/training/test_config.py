"""Config composition and validation: every experiment composes; bad keys fail at start."""

from __future__ import annotations

import pytest
from conftest import tiny_cfg

from pdekit.configs import compose, presets
from pdekit.training.config import validate

EXPERIMENTS = ["ks_mse_unet", "ks_pderefiner", "ks_fno", "ks_mppde", "ns2d_sinenet", "ns2d_unet",
               "burgers_mppde", "burgers_fno", "demo_ks_unet", "demo_ks_refiner", "ks_mppde_s4f1",
               "ks_mppde_s4f4"]


def test_experiment_files_exist():
    assert set(EXPERIMENTS) <= set(presets("experiment"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = validate(compose("train", [f"experiment={name}"]))
    assert cfg.run.experiment == name
    assert "_target_" in cfg.model and cfg.data.train_path.endswith("train.h5")


def test_overrides_reach_the_config():
    cfg = validate(compose("train", ["experiment=ks_fno", "train.steps=7", "train.batch_size=4",
                                   "run.name=abc", "train.precision=bf16"]))
    assert (cfg.train.steps, cfg.train.batch_size, cfg.run.name) == (7, 4, "abc")
    assert cfg.train.precision == "bf16" and cfg.train.predict_difference is True


@pytest.mark.parametrize("edit, words", [
    (("train", "stepz", 3), ["stepz"]),
    (("train", "steps", "many"), ["train.steps"]),
    (("train", "objective", "l1"), ["train.objective", "l1"]),
    (("train", "precision", "fp8"), ["train.precision"]),
    (("data", "history", 0), ["data.history"]),
])
def test_bad_values_fail_with_one_line(tmp_path, edit, words):
    cfg = tiny_cfg({"train": "a.h5", "valid": None}, tmp_path)
    section, key, value = edit
    cfg[section][key] = value
    with pytest.raises(ValueError) as err:
        validate(cfg)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown model preset 'nope'"):
        compose("train", ["model=nope"])
    with pytest.raises(ValueError, match="unknown experiment preset 'nope'"):
        compose("train", ["experiment=nope"])


def test_data_presets_condition_on_what_their_protocol_stores():
    """A data preset named like a pde preset conditions on that protocol's stored parameters
    (its `cond_keys`); `burgers_forced` once asked for `beta`, which the protocol stores as
    `nu`, so every run on it failed at start."""
    from omegaconf import OmegaConf

    from pdekit.configs import package_dir

    checked = 0
    for name in set(presets("data")) & set(presets("pde")):
        data = OmegaConf.load(package_dir() / "data" / f"{name}.yaml")
        pde = OmegaConf.load(package_dir() / "pde" / f"{name}.yaml")
        if "cond_keys" in pde:
            assert set(data.cond_keys) <= set(pde.cond_keys), name
            checked += 1
    assert checked >= 3


def test_resume_comparison_ignores_the_online_block_of_a_file_run():
    """A file run resumes whatever `data.online` says (it reads no online data: a preset's
    online defaults may change between versions); an online run does not."""
    from pdekit.training.config import comparable

    file_run = compose("train", ["experiment=ks_mse_unet"])
    other = compose("train", ["experiment=ks_mse_unet", "data.online.refresh_every=7"])
    assert comparable(file_run) == comparable(other)
    online = compose("train", ["experiment=ks_mse_unet", "pde=ks", "data.source=online"])
    online7 = compose("train", ["experiment=ks_mse_unet", "pde=ks", "data.source=online",
                                "data.online.refresh_every=7"])
    assert comparable(online) != comparable(online7)
    assert comparable(file_run) != comparable(online)
