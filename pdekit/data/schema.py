"""The pdekit HDF5 schema: names, version and validation of generated files.

See ``docs/data.md`` for the layout. :func:`validate_pdekit` raises ``ValueError`` with one line
that names the file and what is wrong, so the CLI can print it as is.
"""

from __future__ import annotations

import h5py

SCHEMA_VERSION = 1
REQUIRED_ATTRS = ("pde", "dt", "spatial_dims", "schema_version", "config", "created_by")
REQUIRED_PARAMS = ("dt", "dx")
#: Root attribute recording how many trajectories are written (resume bookkeeping).
PROGRESS_ATTR = "completed_trajectories"
#: Root attribute set to True only once the file is finished (just before the final rename).
COMPLETE_ATTR = "complete"


def validate_pdekit(f: h5py.File, path) -> None:
    """Check that ``f`` is a complete pdekit trajectory file of a supported schema version."""
    missing = [a for a in REQUIRED_ATTRS if a not in f.attrs]
    if missing:
        raise ValueError(f"{path}: incomplete pdekit schema: missing root attribute(s) "
                         f"{', '.join(missing)}")
    version = int(f.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {version} is newer than this pdekit "
                         f"supports ({SCHEMA_VERSION}); upgrade pdekit")
    u = f.get("u")
    if not isinstance(u, h5py.Dataset):
        raise ValueError(f"{path}: incomplete pdekit schema: no 'u' dataset")
    n = u.shape[0]
    if not bool(f.attrs.get(COMPLETE_ATTR, False)):
        done = int(f.attrs.get(PROGRESS_ATTR, 0))
        raise ValueError(f"{path}: unfinished file ({done} of {n} trajectories written); "
                         "re-run the same `pdekit generate` command to resume it")
    dims = int(f.attrs["spatial_dims"])
    if dims not in (1, 2) or u.ndim != 3 + dims:
        raise ValueError(f"{path}: 'u' has shape {u.shape}; expected (N, T, C, *spatial) with "
                         f"{dims} spatial dimension(s)")
    t_frames = u.shape[1]
    t = f.get("t")
    if not isinstance(t, h5py.Dataset) or t.shape not in ((t_frames,), (n, t_frames)):
        raise ValueError(f"{path}: 't' must have shape ({t_frames},) or ({n}, {t_frames}), "
                         f"got {None if t is None else t.shape}")
    for axis, name in enumerate(("x", "y")[:dims]):
        ds = f.get(name)
        size = u.shape[3 + axis]
        if not isinstance(ds, h5py.Dataset) or ds.shape not in ((size,), (n, size)):
            raise ValueError(f"{path}: coordinate '{name}' must have shape ({size},) or "
                             f"({n}, {size}), got {None if ds is None else ds.shape}")
    params = f.get("params")
    if not isinstance(params, h5py.Group):
        raise ValueError(f"{path}: incomplete pdekit schema: no 'params' group")
    for name in REQUIRED_PARAMS:
        if name not in params:
            raise ValueError(f"{path}: incomplete pdekit schema: missing params/{name}")
    for name, ds in params.items():
        if not isinstance(ds, h5py.Dataset) or ds.ndim < 1 or ds.shape[0] != n:
            raise ValueError(f"{path}: params/{name} must hold one value per trajectory "
                             f"({n}), got shape {getattr(ds, 'shape', None)}")
