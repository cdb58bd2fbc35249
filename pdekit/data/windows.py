"""Training / evaluation windows over a trajectory file.

A window is ``history`` input frames followed by ``future`` target frames, consecutive frames
``stride`` saved frames apart, starting at any stored frame ``s``:
inputs are frames ``s + stride * [0, ..., H-1]``, targets ``s + stride * [H, ..., H+F-1]``.
Window ``w`` is trajectory ``w // starts`` at start ``w % starts`` with
``starts = T - (H + F - 1) * stride``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from pdekit.data.reader import Trajectories, open_trajectories
from pdekit.data.stats import NormStats
from pdekit.data.stats_io import load_stats

Batch = dict[str, np.ndarray]


class WindowDataset:
    """Normalised ``{"u_in", "u_out", "cond"}`` batches from a pdekit or PDEArena file.

    The file's ``u`` is loaded into memory when it is at most ``ram_budget_bytes``; otherwise
    windows are read from HDF5 per batch (one hyperslab read per trajectory touched, in sorted
    order). Both paths return identical arrays. ``cond`` columns follow ``cond_keys`` taken from
    ``params/*``; ``"dt"`` is the MODEL step ``stride * dt``. ``stats`` defaults to the file's own
    statistics: pass the train set's ``ds.stats`` when building validation / test datasets.
    """

    def __init__(
        self,
        source: str | Path | Trajectories,
        *,
        history: int,
        future: int,
        stride: int = 1,
        cond_keys: Sequence[str] = ("dt", "dx"),
        split: str | None = None,
        ram_budget_bytes: int = 2**31,
        stats: NormStats | None = None,
    ):
        for name, value in (("history", history), ("future", future), ("stride", stride)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.trajectories = (source if isinstance(source, Trajectories)
                             else open_trajectories(source, split=split))
        tr = self.trajectories
        self.history, self.future, self.stride = int(history), int(future), int(stride)
        self.span = (self.history + self.future - 1) * self.stride + 1
        if self.span > tr.num_frames:
            raise ValueError(
                f"a window of history={history} + future={future} frames at stride {stride} "
                f"spans {self.span} frames, but {tr.path} has only {tr.num_frames} per trajectory"
            )
        self.starts_per_trajectory = tr.num_frames - self.span + 1
        self.num_windows = tr.num_trajectories * self.starts_per_trajectory
        self.cond_keys = tuple(cond_keys)
        self.model_dt = self.stride * np.asarray(tr.dt, dtype=np.float64)
        self.cond = self._cond_table()
        self.stats = stats if stats is not None else load_stats(tr, self.stride)
        if self.stats.channels != tr.channels:
            raise ValueError(f"stats have {self.stats.channels} channels, data {tr.channels}")
        self.in_memory = tr.nbytes <= ram_budget_bytes
        self._data = np.asarray(tr.u[:]) if self.in_memory else None
        self._offsets = self.stride * np.arange(self.history + self.future)
        self._perm_cache: tuple[tuple[int, int], np.ndarray] | None = None

    # --- shape information -------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.trajectories.channels

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.trajectories.spatial_shape

    @property
    def num_cond(self) -> int:
        return len(self.cond_keys)

    @property
    def num_trajectories(self) -> int:
        return self.trajectories.num_trajectories

    def steps_per_epoch(self, batch_size: int) -> int:
        """Number of full global batches per pass over all windows (the last partial one is
        dropped)."""
        if batch_size < 1 or batch_size > self.num_windows:
            raise ValueError(f"batch_size={batch_size} must be in 1..{self.num_windows} "
                             "(the number of windows)")
        return self.num_windows // batch_size

    def _cond_table(self) -> np.ndarray:
        tr = self.trajectories
        cols = []
        for key in self.cond_keys:
            if key == "dt":
                cols.append(self.model_dt)
                continue
            if key not in tr.params or tr.params[key].shape != (tr.num_trajectories,):
                have = ", ".join(k for k, v in tr.params.items() if v.ndim == 1)
                raise ValueError(f"cond key {key!r} is not a per-trajectory scalar of "
                                 f"{tr.path}; available: {have}")
            cols.append(np.asarray(tr.params[key], dtype=np.float64))
        table = np.stack(cols, axis=1) if cols else np.zeros((tr.num_trajectories, 0))
        return table.astype(np.float32)

    # --- reading -----------------------------------------------------------------------
    def _gather(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        traj, start = np.divmod(windows, self.starts_per_trajectory)
        frames = start[:, None] + self._offsets[None, :]
        if self._data is not None:
            return self._data[traj[:, None], frames], traj
        u = self.trajectories.u
        out = np.empty((len(windows), len(self._offsets)) + tuple(u.shape[2:]), dtype=u.dtype)
        order = np.lexsort((start, traj))
        bounds = np.flatnonzero(np.diff(traj[order])) + 1
        for rows in np.split(order, bounds):  # one hyperslab per trajectory (I/O, not compute)
            i, lo = int(traj[rows[0]]), int(start[rows].min())
            hi = int(start[rows].max()) + self.span
            block = np.asarray(u[i, lo:hi])
            out[rows] = block[frames[rows] - lo]
        return out, traj

    def batch_of(self, windows) -> Batch:
        """The batch dict of explicit window ids (see :meth:`window_index`)."""
        raw, traj = self._gather(np.asarray(windows, dtype=np.int64))
        u = self.stats.normalize(raw.astype(np.float32))
        return {"u_in": u[:, : self.history], "u_out": u[:, self.history :],
                "cond": self.cond[traj]}

    def window_index(self, windows) -> tuple[np.ndarray, np.ndarray]:
        """``(trajectory, start frame)`` of window ids."""
        return np.divmod(np.asarray(windows, dtype=np.int64), self.starts_per_trajectory)

    def _permutation(self, seed: int, epoch: int) -> np.ndarray:
        if self._perm_cache is None or self._perm_cache[0] != (seed, epoch):
            rng = np.random.default_rng(np.random.SeedSequence([seed, epoch]))
            self._perm_cache = ((seed, epoch), rng.permutation(self.num_windows))
        return self._perm_cache[1]

    def batch_windows(self, step: int, batch_size: int, *, seed: int, process_index: int = 0,
                      process_count: int = 1) -> np.ndarray:
        """Window ids of this process's shard of global batch ``step`` (see sample_batch)."""
        if seed < 0 or step < 0:
            raise ValueError(f"seed and step must be >= 0, got seed={seed}, step={step}")
        if process_count < 1 or not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} must be in 0..{process_count - 1}")
        if batch_size % process_count:
            raise ValueError(f"global batch_size={batch_size} is not divisible by "
                             f"process_count={process_count}")
        epoch, pos = divmod(int(step), self.steps_per_epoch(batch_size))
        glob = self._permutation(int(seed), epoch)[pos * batch_size : (pos + 1) * batch_size]
        local = batch_size // process_count
        return glob[process_index * local : (process_index + 1) * local]

    def sample_batch(self, step: int, batch_size: int, *, seed: int, process_index: int = 0,
                     process_count: int = 1) -> Batch:
        """Random windows of global batch ``step`` (``batch_size`` is the GLOBAL size).

        Deterministic in ``(seed, step)``: epoch ``step // steps_per_epoch`` visits every window
        once in the order of a permutation seeded by ``(seed, epoch)``. Process ``p`` of ``P``
        gets rows ``[p B/P, (p+1) B/P)`` of the global batch.
        """
        return self.batch_of(self.batch_windows(step, batch_size, seed=seed,
                                              process_index=process_index,
                                              process_count=process_count))

    def iter_eval(self, batch_size: int) -> Iterator[Batch]:
        """Every window (every start of every trajectory) in order; the last batch may be short."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for i in range(0, self.num_windows, batch_size):
            yield self.batch_of(np.arange(i, min(i + batch_size, self.num_windows)))

    def full_trajectories(self, indices=None) -> tuple[np.ndarray, np.ndarray]:
        """Whole normalised trajectories at the model stride: ``(n, T', C, *S)`` float32, and
        their ``cond`` rows ``(n, P)``."""
        n = self.num_trajectories
        idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ValueError(f"trajectory indices must be in 0..{n - 1}")
        idx = idx % n if idx.size else idx
        if self._data is not None:
            raw = self._data[idx, :: self.stride]
        else:
            u = self.trajectories.u
            raw = np.stack([np.asarray(u[int(i)])[:: self.stride] for i in idx]) if idx.size \
                else np.empty((0,) + tuple(u.shape[1:]), u.dtype)[:, :: self.stride]
        return self.stats.normalize(raw.astype(np.float32)), self.cond[idx]

    def close(self) -> None:
        self.trajectories.close()
