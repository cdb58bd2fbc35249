"""Open trajectory files: pdekit's own layout or the published PDEArena/LPSDA KS files.

:func:`open_trajectories` auto-detects the layout, validates it and returns a
:class:`Trajectories` whose ``u`` is lazy (an h5py dataset, or a view adding the channel axis
for PDEArena files) with shape ``(N, T, C, *spatial)``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdekit.data.schema import validate_pdekit

PDEARENA_SPLITS = ("train", "valid", "test")


class ChannelView:
    """Read-only lazy view of an ``(N, T, *S)`` dataset as ``(N, T, 1, *S)``."""

    def __init__(self, ds):
        self._ds = ds
        self.shape = tuple(ds.shape[:2]) + (1,) + tuple(ds.shape[2:])
        self.dtype = ds.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis or k is None for k in key):
            raise IndexError("ChannelView supports plain indices/slices only (no ... or None)")
        head, rest = key[:2], key[2:]
        channel = rest[0] if rest else slice(None)
        inner = head + rest[1:]
        data = np.asarray(self._ds[inner] if inner else self._ds[()])
        axis = sum(not isinstance(k, (int, np.integer)) for k in head) + (2 - len(head))
        data = np.expand_dims(data, axis)
        return data[(slice(None),) * axis + (channel,)]

    def __array__(self, dtype=None, copy=None):
        data = self[:]
        return data if dtype is None else data.astype(dtype)


@dataclasses.dataclass
class Trajectories:
    """A validated trajectory file (one split). Close it, or use it as a context manager."""

    path: Path
    format: str  # "pdekit" or "pdearena"
    split: str | None
    pde: str
    u: Any  # (N, T, C, *S), lazy
    params: dict[str, np.ndarray]
    t: Any  # (T,) or (N, T)
    coords: dict[str, Any]  # "x" (and "y"): (S,) or (N, S)
    attrs: dict[str, Any]
    file: h5py.File

    @property
    def num_trajectories(self) -> int:
        return int(self.u.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.u.shape[1])

    @property
    def channels(self) -> int:
        return int(self.u.shape[2])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.u.shape[3:])

    @property
    def spatial_dims(self) -> int:
        return len(self.spatial_shape)

    @property
    def dt(self) -> np.ndarray:
        """Saved interval per trajectory, ``(N,)``."""
        return self.params["dt"]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.u.shape)) * np.dtype(self.u.dtype).itemsize

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Trajectories:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not an HDF5 trajectory file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        reason = str(err).split("(", 1)[-1].rstrip(")") if "(" in str(err) else str(err)
        raise ValueError(f"{path}: not a readable HDF5 file ({reason}); it is corrupt or "
                         "truncated - regenerate or re-download it") from None


def _pdearena_groups(f: h5py.File) -> list[str]:
    return [s for s in PDEARENA_SPLITS if isinstance(f.get(s), h5py.Group)
            and any(k.startswith("pde_") for k in f[s])]


def list_splits(path) -> list[str]:
    """PDEArena split groups of ``path`` (``[]`` for a pdekit file, which holds one split)."""
    with _open_h5(Path(path)) as f:
        return [] if "u" in f else _pdearena_groups(f)


def open_trajectories(path, split: str | None = None) -> Trajectories:
    """Open a pdekit or PDEArena/LPSDA file; ``split`` picks the PDEArena group.

    Raises ``FileNotFoundError`` / ``ValueError`` with a one-line message for a missing,
    corrupt, truncated, unfinished or foreign file.
    """
    path = Path(path)
    f = _open_h5(path)
    try:
        if "u" in f and "schema_version" in f.attrs:
            return _open_pdekit(f, path, split)
        if _pdearena_groups(f):
            return _open_pdearena(f, path, split)
        found = ", ".join(sorted(f.keys())[:8]) or "nothing"
        raise ValueError(f"{path}: not a pdekit or PDEArena trajectory file (no 'u' dataset "
                         f"with pdekit attributes and no train/valid/test groups with pde_* "
                         f"data; found: {found})")
    except Exception:
        f.close()
        raise


def _attr(value):
    return value.decode() if isinstance(value, bytes) else value


def _open_pdekit(f: h5py.File, path: Path, split: str | None) -> Trajectories:
    try:
        validate_pdekit(f, path)
    except (KeyError, OSError) as err:
        raise ValueError(f"{path}: corrupt pdekit file ({err})") from None
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    file_split = attrs.get("split")
    if split is not None and file_split is not None and split != file_split:
        raise ValueError(f"{path}: file holds the {file_split!r} split, not {split!r}")
    params = {k: np.asarray(v[()]) for k, v in f["params"].items()}
    coords = {k: f[k] for k in ("x", "y") if k in f}
    return Trajectories(path=path, format="pdekit", split=file_split, pde=str(attrs["pde"]),
                        u=f["u"], params=params, t=f["t"], coords=coords, attrs=attrs, file=f)


def _open_pdearena(f: h5py.File, path: Path, split: str | None) -> Trajectories:
    groups = _pdearena_groups(f)
    if split is None:
        if len(groups) != 1:
            raise ValueError(f"{path}: PDEArena file holds splits {', '.join(groups)}; "
                             "pass split=... (--split) to pick one")
        split = groups[0]
    if split not in groups:
        raise ValueError(f"{path}: no split {split!r} in this PDEArena file; it holds "
                         f"{', '.join(groups)}")
    g = f[split]
    names = [k for k in g if k.startswith("pde_")]
    if len(names) != 1:
        raise ValueError(f"{path}: group {split!r} must hold exactly one pde_* dataset, "
                         f"found {names}")
    data = g[names[0]]
    if data.ndim != 3:
        raise ValueError(f"{path}: {split}/{names[0]} must be (N, nt, nx), got {data.shape}")
    n, nt, nx = data.shape
    expected = {"dt": (n,), "dx": (n,), "t": (n, nt), "x": (n, nx)}
    for name, shape in expected.items():
        if name not in g or g[name].shape != shape:
            got = g[name].shape if name in g else "missing"
            raise ValueError(f"{path}: PDEArena {split}/{name} must have shape {shape}, "
                             f"got {got}")
    params = {"dt": np.asarray(g["dt"][()], dtype=np.float64),
              "dx": np.asarray(g["dx"][()], dtype=np.float64)}
    params["L"] = params["dx"] * nx
    if "v" in g:
        if g["v"].shape != (n,):
            raise ValueError(f"{path}: PDEArena {split}/v must have shape ({n},)")
        params["nu"] = np.asarray(g["v"][()], dtype=np.float64)
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    return Trajectories(path=path, format="pdearena", split=split, pde="pdearena",
                        u=ChannelView(data), params=params, t=g["t"], coords={"x": g["x"]},
                        attrs=attrs, file=f)
