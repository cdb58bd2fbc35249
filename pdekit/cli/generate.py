"""``pdekit generate``: solve a PDE preset and write one split to HDF5 (Hydra app).

``pdekit generate pde=ks split=train num_trajectories=2048 output=datasets/ks/train.h5``.
The work is :func:`pdekit.data.generate_dataset`; this module resolves the config and turns
bad input into a one-line error (exit status 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdekit.cli._common import CONFIG_DIR, cli_errors


def run(cfg: Any) -> None:
    """Generate the dataset described by a resolved Hydra config."""
    from omegaconf import OmegaConf

    with cli_errors("generate"):
        config = OmegaConf.to_container(cfg, resolve=True)
        from pdekit.data import generate_dataset

        out = generate_dataset(config, progress=bool(config.get("progress", True)))
        print(f"wrote {out}")


def _presets(group: str) -> str:
    """Comma-separated preset names of a config group (used by the ``--help`` template)."""
    names = sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))
    return ", ".join(names) or "(none)"


def check_presets(argv: list[str], group: str = "pde") -> None:
    """Reject ``pde=<name>`` overrides naming no preset with a one-line error (exit 2).

    Hydra would print a multi-line report; this keeps bad input to one line.
    """
    import sys

    known = set(_presets(group).split(", "))
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key.lstrip("+~") != group:
            continue
        for name in value.split(","):  # multirun sweeps list several
            if name and name not in known:
                print(f"pdekit generate: error: unknown preset {group}={name}; choose from "
                      f"{', '.join(sorted(known))}", file=sys.stderr)
                sys.exit(2)


def main() -> None:
    import sys

    import hydra
    from omegaconf import OmegaConf

    check_presets(sys.argv[1:])
    if any(a in ("--cfg", "-c") for a in sys.argv[1:]) and "--resolve" not in sys.argv:
        sys.argv.append("--resolve")  # show the output path etc. as they will be used
    OmegaConf.register_new_resolver("pdekit_presets", _presets, replace=True)
    hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base=None)(run)()


if __name__ == "__main__":
    main()
