"""Stable seeds: one integer per (preset, split, seed), one PRNG key per trajectory.

Seeds are derived by hashing a string, never from Python's ``hash`` (salted per process), so
the same command gives the same data on any machine. The trajectory key depends only on the
split seed and the trajectory's index in the file, not on batch size or batch order, which is
what makes resumed and uninterrupted runs produce identical bytes.
"""

from __future__ import annotations

import hashlib

import jax
from jaxtyping import Array, Int


def split_seed(preset: str, split: str, seed: int) -> int:
    """A 31-bit integer seed for ``(preset, split, seed)``; distinct strings give distinct seeds.

    >>> split_seed("ks", "train", 0) != split_seed("ks", "valid", 0)
    True
    """
    digest = hashlib.sha256(f"pdekit/{preset}/{split}/{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFFFFFF


def trajectory_key(seed: int, index: Int[Array, ""] | int) -> Array:
    """PRNG key of trajectory ``index`` of the split with seed ``seed`` (traceable in ``index``)."""
    return jax.random.fold_in(jax.random.key(seed), index)
