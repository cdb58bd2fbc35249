"""Datasets: protocols, HDF5 writer/reader, training windows and normalisation.

Flat public API::

    from pdekit.data import open_trajectories, WindowDataset, NormStats
    tr = open_trajectories("datasets/ks/train.h5")           # or a PDEArena file + split=
    ds = WindowDataset(tr, history=1, future=1, stride=4)
    batch = ds.sample_batch(0, 128, seed=0)                 # {"u_in", "u_out", "cond"}

See ``docs/data.md`` for the HDF5 layout and the protocols.
"""

from pdekit.data.protocols import Protocol, build_protocol
from pdekit.data.protocols_eqs import make_batch_solver
from pdekit.data.reader import ChannelView, Trajectories, list_splits, open_trajectories
from pdekit.data.schema import SCHEMA_VERSION, validate_pdekit
from pdekit.data.seeds import split_seed, trajectory_key
from pdekit.data.stats import NormStats, compute_stats
from pdekit.data.stats_io import load_stats, read_stats, write_stats
from pdekit.data.windows import WindowDataset
from pdekit.data.writer import auto_batch_size, generate_dataset

__all__ = [
    "SCHEMA_VERSION", "ChannelView", "NormStats", "Protocol", "Trajectories", "WindowDataset",
    "auto_batch_size", "build_protocol", "compute_stats", "generate_dataset", "list_splits", "load_stats",
    "make_batch_solver", "open_trajectories", "read_stats", "split_seed", "trajectory_key",
    "validate_pdekit", "write_stats",
]
