"""Device memory statistics, read in one place: the allocator counters of a JAX device
(``device.memory_stats()``), or None where the backend keeps none (the CPU backend)."""

from __future__ import annotations

import jax


def memory_stat(key: str, device=None) -> int | None:
    """``device.memory_stats()[key]`` (default device: the first local one) as an int, or None
    where the backend keeps no memory statistics or not this one."""
    try:
        stats = (device or jax.local_devices()[0]).memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats
        return None
    value = stats.get(key)
    return None if value is None else int(value)


def peak_bytes_in_use(device=None) -> int | None:
    """The allocator's peak bytes of ``device`` in this process (None on CPU)."""
    return memory_stat("peak_bytes_in_use", device)


def bytes_limit(device=None) -> int | None:
    """The allocator's limit of ``device``: the memory a process may use on it (None on CPU)."""
    return memory_stat("bytes_limit", device)
