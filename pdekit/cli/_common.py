"""Shared helpers for the CLI subcommands: one-line error reporting."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from pdekit.configs import package_dir

#: The Hydra config tree shipped in the package (``pdekit/configs``).
CONFIG_DIR = str(package_dir())

#: Exceptions that mean "bad input" and are reported as one line with exit status 2.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, OSError)


@contextlib.contextmanager
def cli_errors(command: str) -> Iterator[None]:
    """Turn a user-input error raised inside ``command`` into one line on stderr and exit 2.

    Programming errors (anything not in :data:`USER_ERRORS`) still raise with a traceback.
    Set ``PDEKIT_TRACEBACK=1`` to see the traceback of user errors too.
    """
    import os

    try:
        yield
    except USER_ERRORS as err:  # noqa: B902
        if os.environ.get("PDEKIT_TRACEBACK"):
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, KeyError):
            msg = f"missing key {msg}"
        print(f"pdekit {command}: error: {msg}", file=sys.stderr)
        sys.exit(2)
