"""``pdekit train experiment=<name> [hydra overrides...]``.

The config is composed with Hydra's compose API from ``configs/train.yaml`` (no working
directory change, no Hydra output directory), so a wrong preset name, a wrong key or a
wrong type is one line on stderr with exit status 2 and no run directory.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

from pdekit.cli._common import CONFIG_DIR, cli_errors

GROUPS = ("data", "model", "train", "experiment", "pde")


def presets(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def _check_group_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if sep and key in GROUPS and value not in ("", "null") and value not in presets(key):
            raise ValueError(f"unknown {key} preset {value!r}; choose from "
                             f"{', '.join(presets(key)) or '(none)'}")


def compose_config(overrides: list[str]):
    """Compose ``configs/train.yaml`` with ``overrides``; bad input raises ``ValueError``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _check_group_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
            cfg = compose(config_name="train", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"bad overrides: {first}") from None
    return cfg


def _help() -> str:
    lines = ["usage: pdekit train [experiment=<name>] [group=<preset>] [key=value ...]", ""]
    for group in GROUPS:
        lines.append(f"  {group + '=':<12} {', '.join(presets(group)) or '(none)'}")
    lines += ["", "keys: data.*, train.*, run.{root,name}, seed (see docs/training.md)",
              "example: pdekit train experiment=demo_ks_unet train.steps=200 run.name=try1",
              "sweep:   pdekit train -m experiment=ks_fno model.width=32,64   (one after another;",
              "         swept values are appended to run.name: runs/ks_fno/model.width-32, ...)",
              "config:  pdekit train experiment=ks_fno --cfg job   (print the resolved config)"]
    return "\n".join(lines)


def sweep(overrides: list[str]) -> list[list[str]]:
    """Expand ``key=a,b`` overrides into the cartesian product of runs (Hydra's ``-m`` syntax).

    Values in brackets (lists such as ``data.cond_keys=[dt,dx]``) are not split. Each job
    gets its own run directory: the swept values other than ``experiment`` (which names the
    directory above) are appended to ``run.name``, e.g. ``model.width=32,64 run.name=w`` gives
    ``run.name=w_model.width-32`` and ``run.name=w_model.width-64``.
    """
    choices, swept = [], []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and "," in value and not value.lstrip().startswith(("[", "{")):
            choices.append([f"{key}={v}" for v in value.split(",")])
            swept.append(key.lstrip("+~"))
        else:
            choices.append([o])
    tags = [k for k in swept if k not in ("experiment", "run.name")]
    return [_name_job(list(c), tags) for c in itertools.product(*choices)]


def _name_job(job: list[str], tags: list[str]) -> list[str]:
    if not tags:
        return job
    pairs = [o.partition("=") for o in job]
    values = {k.lstrip("+~"): v for k, _, v in pairs}
    parts = [re.sub(r"[^\w.\-]+", "_", f"{k}-{values[k]}") for k in tags]
    base = values.get("run.name")
    name = "_".join(([base] if base else []) + parts)
    return [o for o in job if o.partition("=")[0].lstrip("+~") != "run.name"] + [f"run.name={name}"]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(_help())
        return
    multirun = any(a in ("-m", "--multirun") for a in argv)
    show_cfg = "--cfg" in argv
    argv = [a for a in argv if a not in ("-m", "--multirun", "--cfg", "job")]
    with cli_errors("train"):
        from omegaconf import OmegaConf

        from pdekit.training.loop import NonFiniteLossError, train
        from pdekit.training.preemption import TrainingInterrupted
        from pdekit.training.sharding import maybe_initialize_distributed

        jobs = sweep(argv) if multirun else [argv]
        cfgs = [compose_config(job) for job in jobs]  # validate every job before running any
        if not show_cfg:
            maybe_initialize_distributed()  # before anything starts a JAX backend
        for job, cfg in zip(jobs, cfgs, strict=True):
            if show_cfg:
                print(OmegaConf.to_yaml(cfg, resolve=True))
                continue
            if multirun:
                print(f"pdekit train: job {' '.join(job)}", file=sys.stderr)
            _run(train, cfg, NonFiniteLossError, TrainingInterrupted)


def _run(train, cfg, non_finite, interrupted) -> None:
    """Train one job; a non-finite loss exits 1, a stop signal ``128 + signum`` (143 for
    SIGTERM, 130 for SIGINT) after its checkpoint, a second Ctrl-C 130 without one."""
    try:
        train(cfg)
    except non_finite as err:
        print(f"pdekit train: error: {err}", file=sys.stderr)
        sys.exit(1)
    except interrupted as err:
        print(f"pdekit train: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("pdekit train: interrupted (no checkpoint of this step)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
