"""The ``pdekit`` console command.

``pdekit [--config-dir DIR ...] <subcommand> [hydra overrides...]``. Each subcommand lives in
its own module with a ``main()`` entry point; this dispatcher only picks the module, so
importing it is cheap. ``--config-dir DIR`` (before or after the subcommand, repeatable) adds a
directory of your own presets and experiments, as ``$PDEKIT_CONFIG_PATH`` does
(:mod:`pdekit.configs`).
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("pdekit.cli.generate", "solve a PDE preset and write HDF5 trajectories"),
    "inspect": ("pdekit.cli.inspect", "summarise and check an HDF5 trajectory file"),
    "train": ("pdekit.cli.train", "train a surrogate (Hydra-configured)"),
    "evaluate": ("pdekit.cli.evaluate", "roll models out and write metrics, plots and a report"),
}


def _usage() -> str:
    lines = ["usage: pdekit <command> [options / hydra overrides]", "", "commands:"]
    for name, (_, summary) in SUBCOMMANDS.items():
        lines.append(f"  {name:<10} {summary}")
    lines += ["", "Run `pdekit <command> --help` for the presets and keys of a command.",
              "--config-dir DIR adds a directory of your own presets (as $PDEKIT_CONFIG_PATH)."]
    return "\n".join(lines)


def _take_config_dirs(argv: list[str]) -> list[str]:
    """Remove ``--config-dir DIR`` / ``--config-dir=DIR`` from ``argv``; prepend the dirs to
    ``$PDEKIT_CONFIG_PATH`` for the subcommand."""
    rest, dirs = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config-dir" or a == "-cd":
            if i + 1 >= len(argv):
                print("pdekit: error: --config-dir needs a directory", file=sys.stderr)
                sys.exit(2)
            dirs.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--config-dir="):
            dirs.append(a.partition("=")[2])
        else:
            rest.append(a)
        i += 1
    if dirs:
        old = os.environ.get("PDEKIT_CONFIG_PATH", "")
        os.environ["PDEKIT_CONFIG_PATH"] = os.pathsep.join([*dirs, *([old] if old else [])])
    return rest


def main(argv: list[str] | None = None) -> None:
    argv = _take_config_dirs(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        sys.exit(0 if argv else 2)
    name = argv[0]
    if name not in SUBCOMMANDS:
        print(f"pdekit: error: unknown command {name!r}; choose from {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sys.argv = [f"pdekit {name}", *argv[1:]]
    module.main()


if __name__ == "__main__":
    main()
