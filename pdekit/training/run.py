"""Run directories and :func:`load_run`.

``<run.root>/<run.experiment>/<run.name>/`` holds ``config.yaml`` (the resolved config,
including ``derived`` facts about the data), ``stats.json`` (normalisation statistics),
``checkpoints/{last,best}/`` (orbax), ``metrics.jsonl`` and ``tb/`` (TensorBoard, optional).
Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
from omegaconf import DictConfig, OmegaConf

from pdekit.training.config import comparable


def run_dir_of(cfg) -> Path:
    return Path(cfg.run.root) / cfg.run.experiment / cfg.run.name


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "<root>"


def prepare_run_dir(cfg: DictConfig, stats) -> Path:
    """Create the run directory (or check that an existing one holds the same run).

    Call only after every input has been validated, so bad input leaves no directory.
    """
    path = run_dir_of(cfg)
    saved_path = path / "config.yaml"
    if saved_path.exists():
        saved = OmegaConf.load(saved_path)
        a, b = comparable(saved), comparable(cfg)
        if a != b:
            raise ValueError(
                f"run directory {path} holds a run with a different config (key "
                f"{_first_difference(a, b)!r}); choose another run.name or remove the directory")
        return path
    if jax.process_index() == 0:
        path.mkdir(parents=True, exist_ok=True)
        save_stats(stats, path / "stats.json")
        _write_atomic(saved_path, OmegaConf.to_yaml(cfg, resolve=True).encode())
    return path


def save_stats(stats, path: Path) -> None:
    """Store a ``NormStats`` as JSON (``NormStats.to_dict``)."""
    _write_atomic(path, json.dumps(stats.to_dict(), indent=1).encode())


def load_stats(path: Path):
    from pdekit.data.stats import NormStats

    return NormStats.from_dict(json.loads(Path(path).read_text()))


def load_run(run_dir: str | Path, which: str = "best", ema: bool = True):
    """Restore a trained model: ``(model, cfg, stats)``.

    ``which="best"`` is the checkpoint with the best validation rollout correlation (the last
    one when the run had no validation split); ``ema`` picks the EMA weights (else the raw
    parameters). ``model`` is the equinox model exactly as training built it (wrapped in
    ``Residual`` when ``train.predict_difference``); ``cfg`` the resolved config.
    """
    import equinox as eqx

    from pdekit.training.checkpoint import Checkpoints
    from pdekit.training.model import abstract_model, abstract_split, init_model, split
    from pdekit.training.optim import make_optimizer
    from pdekit.training.state import init_state

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"no run at {run_dir} (config.yaml missing)")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    key = jax.random.PRNGKey(int(cfg.seed))
    skeleton = abstract_model(cfg, cfg.derived, key)
    params, static = abstract_split(skeleton)
    if static is None:  # the model holds non-trainable arrays: build it for real
        params, static = split(init_model(cfg, cfg.derived, key, device, skeleton))
    shapes = jax.eval_shape(lambda p: init_state(p, make_optimizer(cfg.train), int(cfg.seed), int(cfg.train.steps)), params)
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes)
    ckpts = Checkpoints(run_dir / "checkpoints", read_only=True)
    try:
        if which == "best" and ckpts.latest_step("best") is None:
            which = "last"
        restored = ckpts.restore(target, which=which)
    finally:
        ckpts.close()
    if restored is None:
        raise FileNotFoundError(f"run {run_dir} has no {which!r} checkpoint yet")
    state, _ = restored
    model = eqx.combine(state["ema" if ema else "params"], static)
    return model, cfg, load_stats(run_dir / "stats.json")
