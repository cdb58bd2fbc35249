"""File-system safety shared by data generation and training (docs/safety.md).

* :class:`ExclusiveLock`: an advisory ``fcntl.flock`` lock on a lock file. The kernel
  releases it when the holding process exits, however it exits (SIGKILL included), so a
  stale lock file never blocks anyone; a second process refuses in one line.
* :func:`check_plain_name`: a directory or file name component that cannot climb out of
  its parent (no separators, no ``..``, no interpolation).
* :func:`check_free_space`: refuse to start writing what the disk cannot hold.
* :func:`write_atomic` / :func:`atomic_path`: the one write-then-rename of the package; a
  reader never sees a half-written file, and a failed write leaves no temporary behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path


class LockedError(OSError):
    """Another process holds the lock (reported as one line, exit status 2, by the CLI)."""


class ExclusiveLock:
    """An exclusive, non-blocking ``flock`` on ``path`` (created if absent).

    ``what`` names the protected thing in the refusal message, e.g. ``"run directory
    runs/x/y"``. The holder's pid is written into the file so the message can name it.
    With ``remove=True`` the lock file is deleted on release (while still locked); an
    acquirer then checks that the file it locked is still the one at ``path``, so a
    process that opened the old file just before the deletion cannot share the lock.
    """

    def __init__(self, path: str | Path, what: str, *, remove: bool = False):
        self.path = Path(path)
        self.what = what
        self.remove = remove
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> ExclusiveLock:
        """Take the lock or raise :class:`LockedError` naming the holder."""
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = _read_pid(fd)
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                by = f" (pid {holder})" if holder else ""
                raise LockedError(f"{self.what} is in use by another process{by}; wait for it "
                                  f"to finish, or stop it (lock file {self.path})") from None
            if not _same_file(fd, self.path):  # deleted by its last holder meanwhile: retry
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (and delete the lock file when ``remove``)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self.remove:
                self.path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


_UNSAFE = re.compile(r"[/\\\x00]|\$\{")


def check_plain_name(value, key: str) -> str:
    """``value`` if it is a plain, non-empty name component; else ``ValueError``.

    Refused: separators (``/``, ``\\``), ``.`` and ``..``, NUL, leading ``~``, interpolation
    (``${...}``), surrounding whitespace and non-strings. This keeps ``<root>/<name>`` inside
    ``<root>``.
    """
    if not isinstance(value, str) or not value or value in (".", "..") or value.strip() != value:
        raise ValueError(f"{key}={value!r} must be a plain non-empty name (letters, digits, "
                         "'-', '_', '.')")
    if _UNSAFE.search(value) or value.startswith("~") or any(ord(c) < 32 for c in value):
        raise ValueError(f"{key}={value!r} must be a plain name: no path separators, '..', "
                         "'~' or ${...} interpolation")
    return value


def free_bytes(path: str | Path) -> int:
    """Free bytes on the file system that holds ``path`` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


#: Room left on the disk beyond what a file is expected to take (metadata, other writers).
SPACE_MARGIN = 64 << 20


class NoSpaceError(OSError):
    """Not enough free disk space for what is about to be written."""


def check_free_space(path: str | Path, need: int, what: str) -> None:
    """Refuse (``OSError`` with one line) when ``need`` bytes do not fit beside ``path``."""
    have = free_bytes(path)
    if need + SPACE_MARGIN > have:
        raise NoSpaceError(f"{what} needs about {_human(need)} but the disk holding {path} "
                           f"has {_human(have)} free; free space or write elsewhere")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` (same directory, same suffix, unique per
    process) to write; on success it is renamed onto ``path``, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)
