"""``pdekit train experiment=<name> [hydra overrides...]``.

The config is composed by :func:`pdekit.configs.compose` from the packaged ``train.yaml`` and the
user's config directories (no working directory change, no Hydra output directory), so a wrong
preset name, a wrong key or a wrong type is one line on stderr with exit status 2 and no run
directory. Sweeps are :func:`pdekit.training.sweep.sweep`; this module parses and prints.
"""

from __future__ import annotations

import sys

from pdekit.cli._common import cli_errors
from pdekit.configs import GROUPS, compose, presets
from pdekit.training.sweep import sweep


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
        cfgs = [compose("train", job) for job in jobs]  # validate every job before running any
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
