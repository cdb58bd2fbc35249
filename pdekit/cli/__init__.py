"""The ``pdekit`` console command.

``pdekit <subcommand> [hydra overrides...]``. Each subcommand lives in its own module with a
``main()`` entry point; this dispatcher only picks the module, so importing it is cheap.
"""

from __future__ import annotations

import importlib
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
    lines += ["", "Run `pdekit <command> --help` for the presets and keys of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
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
