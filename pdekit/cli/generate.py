"""``pdekit generate``: solve a PDE preset and write one split to HDF5 (Hydra app).

``pdekit generate pde=ks split=train num_trajectories=2048 output=datasets/ks/train.h5``.
The work is :func:`pdekit.data.generate_dataset`; this module resolves the config and turns
bad input into a one-line error (exit status 2).
"""

from __future__ import annotations

import re
from typing import Any

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from pdekit.cli._common import CONFIG_DIR, cli_errors
from pdekit.configs import compose, presets, search_path_override

#: The keys of ``configs/generate.yaml``; any other (``+foo=1``) is refused, not ignored.
KEYS = frozenset({"pde", "split", "num_trajectories", "output", "seed", "batch_size",
                  "overwrite", "precision", "solve_precision", "progress"})
#: Command-line flags of Hydra apps that are not overrides.
_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--resolve", "--package", "-p", "job", "hydra",
          "all")
#: Compose at most this many jobs of a sweep when checking it.
MAX_CHECKED_JOBS = 64


def check_config(config: dict) -> None:
    """Refuse unknown top-level and preset keys (``ValueError``, one line)."""
    from pdekit.data.protocols import check_preset_keys

    extra = sorted(str(k) for k in config if k not in KEYS and k != "hydra")
    if extra:
        raise ValueError(f"unknown key {extra[0]!r}; known: {', '.join(sorted(KEYS))} and pde.*")
    if not isinstance(config.get("pde"), dict):
        raise ValueError("pde must name a preset (pde=<name>)")
    check_preset_keys(config["pde"])


def _resolved(cfg) -> dict:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return OmegaConf.to_container(plain, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"bad config{f' key {key!r}' if key else ''}: {first}") from None


def run(cfg: Any) -> None:
    """Generate the dataset described by a resolved Hydra config."""
    with cli_errors("generate"):
        config = _resolved(cfg)
        check_config(config)
        from pdekit.data import generate_dataset

        out = generate_dataset(config, progress=bool(config.get("progress", True)))
        print(f"wrote {out}")


def _presets(group: str) -> str:
    """Comma-separated preset names of a config group (used by the ``--help`` template)."""
    return ", ".join(presets(group)) or "(none)"


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


def _jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists of a (possibly swept) command, parsed by Hydra's own grammar."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for raw, o in zip(overrides, parsed, strict=True):
        if o.is_sweep_override():
            if not multirun:
                raise ValueError(f"{raw} sweeps several values; add -m to run one job per value")
            key = raw.partition("=")[0]
            choices.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            choices.append([raw])
    return [list(job) for job in itertools.islice(itertools.product(*choices), MAX_CHECKED_JOBS)]


def check_overrides(argv: list[str]) -> None:
    """Compose every job of ``argv`` and check its keys before Hydra runs anything, so a
    misspelt or unknown key is one line and exit status 2 (Hydra's own report is longer)."""
    overrides = [a for a in argv if not a.startswith("-") and a not in _FLAGS
                 and not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        jobs = _jobs(overrides, multirun=any(a in ("-m", "--multirun") for a in argv))
    except (HydraException, OmegaConfBaseException) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"bad overrides: {first}") from None
    try:
        configs = [compose("generate", job) for job in jobs]
    except ValueError as err:
        if re.match(r"bad overrides: unknown key", str(err)):
            raise ValueError(f"{err} (pdekit generate --help lists the keys; pde.<key> for "
                             "preset numbers)") from None
        raise
    for cfg in configs:
        check_config(_resolved(cfg))


def main() -> None:
    import sys

    import hydra
    from omegaconf import OmegaConf

    argv = sys.argv[1:]
    check_presets(argv)
    if not any(a in ("-h", "--help", "--hydra-help", "--info", "-i") for a in argv):
        with cli_errors("generate"):
            check_overrides(argv)
    if any(a in ("--cfg", "-c") for a in sys.argv[1:]) and "--resolve" not in sys.argv:
        sys.argv.append("--resolve")  # show the output path etc. as they will be used
    with cli_errors("generate"):
        sys.argv += search_path_override()  # the user's config directories
    OmegaConf.register_new_resolver("pdekit_presets", _presets, replace=True)
    hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base=None)(run)()


if __name__ == "__main__":
    main()
