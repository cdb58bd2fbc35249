"""Loading a run or an override runs no code the config names (issue 16, part 4).

The payload is the one the issue reports: ``pathlib.Path.write_text`` writes a script and a
second ``_target_`` runs it. Hydra's instantiate runs it (checked first, so these tests can
fail); pdekit refuses it from a run directory, from ``pdekit evaluate run=DIR`` and from a
``pdekit train`` override, and writes nothing.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import hydra.utils
import jax
import pytest
from omegaconf import OmegaConf

import pdekit.models.fno as fno_module
from pdekit.configs import compose
from pdekit.evaluation.jobs import evaluate
from pdekit.models.refiner import PDERefiner
from pdekit.models.unet import UNetMod
from pdekit.training import load_run
from pdekit.training.config import validate
from pdekit.training.loop import train
from pdekit.training.model import abstract_model
from pdekit.training.targets import ALLOW_ENV, TargetError, build, resolve_target

FNO = {"_target_": "pdekit.models.fno.FNO", "width": 4, "modes": 4, "num_layers": 1,
       "projection_channels": 4}
DERIVED = {"spatial_dims": 1, "spatial_shape": [16], "channels": 1, "num_cond": 2,
           "num_windows": 64, "devices": 1, "num_params": 100}
STATS = {"mean": [0.0], "std": [1.0], "diff_mean": [0.0], "diff_std": [1.0],
         "spatial_dims": 1, "diff_stride": 1}

def train_main(argv):
    """What ``pdekit train <argv>`` does, through the library (tests/cli tests the command)."""
    return train(compose("train", argv))


class Allowed:
    """A model-like class outside pdekit.models (allowed only through the env var)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


def payload(tmp: Path) -> dict:
    """``_target_``s that write ``tmp/evil.py`` and run it; the script writes ``tmp/pwned``."""
    script, mark = tmp / "evil.py", tmp / "pwned"
    return {
        "a": {"_target_": "pathlib.Path.write_text",
              "_args_": [{"_target_": "pathlib.Path", "_args_": [str(script)]},
                         f"open({str(mark)!r}, 'w').write('pwned')\n"]},
        "b": {"_target_": "imp.load_source", "_args_": ["evil", str(script)]},
    }


def run_config(root: Path, model: dict) -> dict:
    return {"seed": 0, "run": {"root": str(root), "experiment": "x", "name": "y"},
            "data": {"train_path": str(root / "train.h5"), "valid_path": None},
            "train": {"steps": 4}, "model": model, "derived": DERIVED}


def crafted_run(tmp: Path, model: dict) -> Path:
    """A run directory as someone might send it: config.yaml and stats.json, no code."""
    run = tmp / "received"
    run.mkdir()
    (run / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(run_config(tmp, model))))
    (run / "stats.json").write_text(json.dumps(STATS))
    return run


@pytest.mark.skipif(importlib.util.find_spec("imp") is None, reason="imp left Python 3.12")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_hydra_instantiate_runs_the_payload(tmp_path):
    """The payload is live: Hydra writes and runs the script (why pdekit does not use it)."""
    with pytest.raises(Exception):  # noqa: B017 - FNO then rejects the extra keys
        hydra.utils.instantiate({**FNO, **payload(tmp_path)}, spatial_dims=1, history=1,
                                future=1, channels=1, num_cond=2, key=None)
    assert (tmp_path / "pwned").read_text() == "pwned"


@pytest.mark.parametrize("where", ["nested", "top"])
def test_load_run_of_a_crafted_config_writes_nothing(tmp_path, where):
    model = {**FNO, **payload(tmp_path)} if where == "nested" else payload(tmp_path)["a"]
    run = crafted_run(tmp_path, model)
    with pytest.raises(ValueError, match="'pathlib.Path(.write_text)?' is not allowed"):
        load_run(run)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "pwned").exists()


def test_evaluate_of_a_crafted_run_is_one_line_and_writes_nothing(tmp_path, capsys):
    run = crafted_run(tmp_path, {**FNO, **payload(tmp_path)})
    with pytest.raises((ValueError, OSError)) as exit_info:
        evaluate(compose("evaluate", [f"run={run}"]))
    err = str(exit_info.value).strip()
    assert len(err.splitlines()) == 1, err
    assert "is not allowed" in err and ALLOW_ENV in err
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "pwned").exists()
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "stats.json"]


def test_train_override_payload_is_refused_before_anything_is_written(tmp_path, capsys, ks_files):
    script = tmp_path / "evil.py"
    override = ("+model.a={_target_:pathlib.Path.write_text,_args_:["
                f"{{_target_:pathlib.Path,_args_:['{script}']}},'print(1)']}}")
    with pytest.raises((ValueError, OSError)) as exit_info:
        train_main(["model=fno1d", "model.width=4", "model.modes=4", "model.num_layers=1",
                    f"data.train_path={ks_files['train']}", "data.valid_path=null",
                    f"run.root={tmp_path / 'runs'}", override])
    err = str(exit_info.value).strip()
    assert len(err.splitlines()) == 1, err
    assert "model.a: _target_ 'pathlib.Path.write_text' is not allowed" in err
    assert not script.exists() and not (tmp_path / "runs").exists()


def test_targets_outside_model_are_refused(tmp_path):
    cfg = run_config(tmp_path, FNO)
    cfg["pde"] = {"name": "ks", "hook": payload(tmp_path)["b"]}
    with pytest.raises(ValueError, match="config key 'pde.hook' holds a _target_"):
        validate(cfg)
    run = crafted_run(tmp_path, FNO)
    saved = OmegaConf.load(run / "config.yaml")
    saved.derived.extra = {"_target_": "os.system", "_args_": ["true"]}
    OmegaConf.save(saved, run / "config.yaml")
    with pytest.raises(ValueError, match="'derived.extra' holds a _target_"):
        load_run(run)


def test_refiner_backbone_partial_still_builds(ks_files):
    cfg = compose("train", ["model=pderefiner_small", f"data.train_path={ks_files['train']}",
                          "data.valid_path=null"])
    cfg = validate(cfg)
    assert cfg.model.backbone._partial_ is True
    derived = OmegaConf.create({**DERIVED, "spatial_shape": [32]})
    model = abstract_model(cfg, derived, jax.random.PRNGKey(0))
    assert isinstance(model, PDERefiner) and isinstance(model.backbone, UNetMod)


def test_allowlist_names_classes_and_modules_explicitly(monkeypatch):
    name = f"{__name__}.Allowed"
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(TargetError, match="is not allowed"):
        resolve_target(name)
    for allowed in (name, f"{__name__}.*", f"other.thing, {__name__}.*"):
        monkeypatch.setenv(ALLOW_ENV, allowed)
        assert resolve_target(name) is Allowed
    built = build({"_target_": name, "width": 3, "inner": {"_target_": name, "_partial_": True}},
                  key=7)
    assert built.kwargs["width"] == 3 and built.kwargs["key"] == 7
    assert built.kwargs["inner"]().kwargs == {}  # a functools.partial of the class
    # a module pattern does not admit what the module merely imports from elsewhere
    monkeypatch.setenv(ALLOW_ENV, f"{__name__}.*")
    with pytest.raises(TargetError, match="defined outside the allowed modules"):
        resolve_target(f"{__name__}.OmegaConf")


def test_pdekit_models_reexports_and_non_classes_are_refused():
    foreign = [n for n, v in vars(fno_module).items()
               if inspect.isclass(v) and not v.__module__.startswith("pdekit.models")]
    assert foreign, "pdekit.models.fno imports no foreign class to test with"
    with pytest.raises(TargetError, match="defined outside the allowed modules"):
        resolve_target(f"pdekit.models.fno.{foreign[0]}")
    with pytest.raises(TargetError, match="is not a class or function"):
        resolve_target("pdekit.models.fno.jax")  # a module object
    with pytest.raises(TargetError, match="cannot import"):
        resolve_target("pdekit.models.fno.jnp.save")
    with pytest.raises(TargetError, match="must be a dotted name"):
        resolve_target("pdekit.models.fno.FNO; import os")


@pytest.mark.parametrize("key", ["_args_", "_recursive_", "_convert_"])
def test_other_hydra_keys_are_refused(key):
    with pytest.raises(TargetError, match=f"{key} not supported"):
        build({**FNO, key: []}, spatial_dims=1, history=1, future=1, channels=1, num_cond=2,
              key=None)


def test_missing_or_bad_run_files_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no run at .* \(not a directory\)"):
        load_run(tmp_path / "nothing")
    run = crafted_run(tmp_path, FNO)
    (run / "stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="stats.json .* is missing"):
        load_run(run)
    (run / "stats.json").write_text("{not json")
    with pytest.raises(ValueError, match="stats.json is unreadable"):
        load_run(run)
    (run / "stats.json").write_text(json.dumps(STATS))
    (run / "config.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="config.yaml is not a readable YAML mapping"):
        load_run(run)
    bare = run_config(tmp_path, FNO)
    del bare["derived"]
    (run / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(bare)))
    with pytest.raises(ValueError, match="lacks derived.spatial_dims, derived.channels"):
        load_run(run)
    sneaky = run_config(tmp_path, {**FNO, "width": "${oc.env:HOME}"})
    (run / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(sneaky)))
    with pytest.raises(ValueError, match="holds an interpolation at 'model.width'"):
        load_run(run)
    (run / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"\(config.yaml missing\)"):
        load_run(run)
