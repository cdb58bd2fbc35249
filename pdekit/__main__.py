"""``python -m pdekit <command> ...``: the ``pdekit`` command without an installed script."""

from pdekit.cli import main

main()
