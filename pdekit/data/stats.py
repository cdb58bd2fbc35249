"""Per-channel normalisation statistics of fields and of their time differences.

Statistics are population moments (``ddof=0``) over trajectories, frames and grid points,
computed in float64 in one streaming pass (Chan et al.'s pairwise update), so files larger
than memory are fine. ``diff_*`` are the moments of ``u[:, t + s] - u[:, t]`` at the model
stride ``s`` (recorded as ``diff_stride``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from jaxtyping import Array, Float


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Per-channel ``mean``/``std`` of the fields and ``diff_mean``/``diff_std`` of differences.

    All four are ``(C,)`` arrays. ``spatial_dims`` tells where the channel axis sits: arrays
    passed to the methods end in ``(C, *spatial)``. A zero standard deviation (a constant
    channel) normalises with 1 instead of dividing by zero.
    """

    mean: np.ndarray
    std: np.ndarray
    diff_mean: np.ndarray
    diff_std: np.ndarray
    spatial_dims: int = 1
    diff_stride: int = 1

    def __post_init__(self):
        for name in ("mean", "std", "diff_mean", "diff_std"):
            value = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            object.__setattr__(self, name, value)
        shapes = {self.mean.shape, self.std.shape, self.diff_mean.shape, self.diff_std.shape}
        if len(shapes) != 1 or self.mean.ndim != 1:
            raise ValueError(f"NormStats arrays must all be (C,), got shapes {sorted(shapes)}")

    @property
    def channels(self) -> int:
        return self.mean.shape[0]

    def _shape(self, v: np.ndarray, dtype) -> np.ndarray:
        return v.astype(dtype).reshape((-1,) + (1,) * self.spatial_dims)

    def _dtype(self, u):
        dt = np.dtype(getattr(u, "dtype", np.float32))
        return dt if np.issubdtype(dt, np.floating) else np.dtype(np.float32)

    def normalize(self, u: Float[Array, "... C *S"]):
        """``(u - mean) / std`` per channel (keeps ``u``'s float dtype)."""
        dt = self._dtype(u)
        return (u - self._shape(self.mean, dt)) / self._shape(_safe(self.std), dt)

    def denormalize(self, u: Float[Array, "... C *S"]):
        """Inverse of :meth:`normalize`."""
        dt = self._dtype(u)
        return u * self._shape(_safe(self.std), dt) + self._shape(self.mean, dt)

    def normalize_diff(self, du: Float[Array, "... C *S"]):
        """``(du - diff_mean) / diff_std`` per channel."""
        dt = self._dtype(du)
        return (du - self._shape(self.diff_mean, dt)) / self._shape(_safe(self.diff_std), dt)

    def denormalize_diff(self, du: Float[Array, "... C *S"]):
        """Inverse of :meth:`normalize_diff`."""
        dt = self._dtype(du)
        return du * self._shape(_safe(self.diff_std), dt) + self._shape(self.diff_mean, dt)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists of floats)."""
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "diff_mean": self.diff_mean.tolist(),
            "diff_std": self.diff_std.tolist(),
            "spatial_dims": int(self.spatial_dims),
            "diff_stride": int(self.diff_stride),
        }

    @classmethod
    def identity(cls, channels: int, spatial_dims: int = 1, diff_stride: int = 1) -> NormStats:
        """Statistics that leave fields unchanged (mean 0, std 1): raw-field training."""
        zeros, ones = np.zeros(channels), np.ones(channels)
        return cls(mean=zeros, std=ones, diff_mean=zeros, diff_std=ones,
                   spatial_dims=spatial_dims, diff_stride=diff_stride)

    @property
    def is_identity(self) -> bool:
        return bool(np.all(self.mean == 0) and np.all(self.std == 1)
                    and np.all(self.diff_mean == 0) and np.all(self.diff_std == 1))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NormStats:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming a missing key."""
        missing = [k for k in ("mean", "std", "diff_mean", "diff_std") if k not in d]
        if missing:
            raise ValueError(f"normalisation statistics lack {', '.join(missing)}")
        return cls(
            mean=np.asarray(d["mean"]), std=np.asarray(d["std"]),
            diff_mean=np.asarray(d["diff_mean"]), diff_std=np.asarray(d["diff_std"]),
            spatial_dims=int(d.get("spatial_dims", 1)), diff_stride=int(d.get("diff_stride", 1)),
        )


def _safe(std: np.ndarray) -> np.ndarray:
    return np.where(std > 0, std, 1.0)


class _Moments:
    """Streaming per-channel count / mean / M2 (sum of squared deviations)."""

    def __init__(self, channels: int):
        self.n = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)

    def add(self, block: np.ndarray) -> None:
        """``block`` is ``(N, T, C, *S)``."""
        c = self.mean.shape[0]
        x = np.moveaxis(block, 2, 0).reshape(c, -1).astype(np.float64)
        nb = x.shape[1]
        if nb == 0:
            return
        mb = x.mean(axis=1)
        m2b = ((x - mb[:, None]) ** 2).sum(axis=1)
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * nb / n
        self.m2 = self.m2 + m2b + delta**2 * self.n * nb / n
        self.n = n

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.n, 1))


class StatsAccumulator:
    """:func:`compute_stats` in pieces: :meth:`add` blocks of whole trajectories in order, then
    :meth:`stats`. The data generator feeds it each batch as it is written, so the statistics
    cost no second pass over the file; the same blocks in the same order give bit-identical
    statistics."""

    def __init__(self, channels: int, *, spatial_dims: int, diff_stride: int = 1):
        if diff_stride < 1:
            raise ValueError(f"diff_stride must be >= 1, got {diff_stride}")
        self.spatial_dims, self.diff_stride = spatial_dims, diff_stride
        self.fields, self.diffs = _Moments(channels), _Moments(channels)

    def add(self, block) -> None:
        """``block`` is ``(n, T, C, *S)``: ``n`` whole trajectories."""
        s = self.diff_stride
        if block.shape[1] <= s:
            raise ValueError(
                f"cannot compute difference statistics at stride {s} from {block.shape[1]} frames")
        chunk = np.asarray(block, dtype=np.float64)
        self.fields.add(chunk)
        self.diffs.add(chunk[:, s:] - chunk[:, :-s])

    def stats(self) -> NormStats:
        return NormStats(
            mean=self.fields.mean, std=self.fields.std(), diff_mean=self.diffs.mean,
            diff_std=self.diffs.std(), spatial_dims=self.spatial_dims,
            diff_stride=self.diff_stride,
        )


def compute_stats(
    u, *, spatial_dims: int, diff_stride: int = 1, trajectories_per_block: int | None = None
) -> NormStats:
    """Statistics of ``u`` ``(N, T, C, *S)`` (numpy array or h5py dataset), read in blocks.

    ``trajectories_per_block`` defaults to about 64 MiB per block.
    """
    n, c = u.shape[0], u.shape[2]
    acc = StatsAccumulator(c, spatial_dims=spatial_dims, diff_stride=diff_stride)
    if u.shape[1] <= diff_stride:
        raise ValueError(
            f"cannot compute difference statistics at stride {diff_stride} from {u.shape[1]} frames"
        )
    per_traj = max(1, int(np.prod(u.shape[1:])) * 8)
    block = trajectories_per_block or max(1, (64 << 20) // per_traj)
    for i in range(0, n, block):
        acc.add(u[i : i + block])
    return acc.stats()
