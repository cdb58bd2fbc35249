"""All-or-nothing report sets: stage report directories, then move them into place together.

:class:`ReportStage` hands out a temporary sibling directory per report directory; the caller
writes ``report.json``, ``report.md`` and the figures there. :meth:`ReportStage.commit` moves
every staged directory into place; leaving the ``with`` block on an exception removes them,
so a failed or interrupted evaluation never leaves a partial (or a mixed old/new) report.

An existing report directory is replaced atomically where the platform can swap two
directories (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere it is moved aside and the new
one renamed in (two renames, microseconds apart). A directory that holds anything but report
files (:func:`is_report_file`) is never replaced: that is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
from pathlib import Path

#: Names a report directory may hold (plus ``*.png`` figures).
REPORT_FILES = frozenset({"report.json", "report.md"})

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def is_report_file(name: str) -> bool:
    """A file a report directory may hold: the report, a figure, or their temporaries."""
    base = re.sub(r"^\.(.+)\.tmp-\d+(\.\w+)$", r"\1\2", name)  # pdekit._io.atomic_path
    return base in REPORT_FILES or base.endswith(".png")


def check_replaceable(directory) -> None:
    """Refuse a target that is a file, or a directory holding anything but report files."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"report directory {directory} exists and is not a directory")
    if directory.is_dir():
        other = sorted(p.name for p in directory.iterdir() if not is_report_file(p.name)
                       or not p.is_file())
        if other:
            raise ValueError(f"{directory} holds files other than a report ({', '.join(other[:3])}"
                             f"{', ...' if len(other) > 3 else ''}); choose another directory")


def _libc_renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


_RENAMEAT2 = _libc_renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the platform cannot."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def replace_dir(staged: Path, target: Path) -> None:
    """Move the directory ``staged`` to ``target``, replacing an existing report there."""
    staged, target = Path(staged), Path(target)
    if not target.exists():
        os.rename(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)  # now holds the old report
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(staged, target)
    shutil.rmtree(old)


class ReportStage:
    """Temporary report directories committed together (see the module docstring)."""

    def __init__(self):
        self._staged: list[tuple[Path, Path]] = []
        self._made: list[Path] = []

    def __enter__(self) -> ReportStage:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()

    def _make_parents(self, directory: Path) -> None:
        missing = [p for p in [directory, *directory.parents] if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            self._made.append(p)

    def stage(self, target) -> Path:
        """A fresh temporary directory beside ``target`` for its report set."""
        target = Path(target)
        if any(t == target for t, _ in self._staged):
            raise ValueError(f"two reports of this evaluation would go to {target}")
        check_replaceable(target)
        self._make_parents(target.parent)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        self._staged.append((target, tmp))
        return tmp

    def commit(self) -> list[Path]:
        """Move every staged directory into place; return the targets."""
        for target, tmp in self._staged:
            replace_dir(tmp, target)
        targets = [t for t, _ in self._staged]
        self._staged, self._made = [], []
        return targets

    def discard(self) -> None:
        """Remove the staged directories (and the parents this stage created, when empty)."""
        for _, tmp in self._staged:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(self._made):
            with contextlib.suppress(OSError):
                p.rmdir()
        self._staged, self._made = [], []
