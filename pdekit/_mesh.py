"""The one device mesh of pdekit: every device of every process on one axis, ``"data"``.

Training shards its batch over it (parameters replicated); evaluation shards its rollouts
over it. It lives below both packages so that each can import it.

Also here: the XLA flags that let GPUs overlap the data-parallel gradient all-reduce with
the backward pass (:data:`GPU_OVERLAP_FLAGS`, :func:`add_xla_flags`); XLA reads them once,
when the first backend starts, and nothing in pdekit starts one at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Async collectives are XLA:GPU's default in jax 0.10 (the old ``--xla_gpu_enable_async_*``
#: flags are gone and are refused as unknown; ``--xla_gpu_disable_async_collectives`` turns
#: them off). What lets an all-reduce run while the backward pass still computes is the
#: latency-hiding scheduler, off by default in XLA:GPU. Collectives on the highest-priority
#: stream (the default in this XLA, set here so that it stays so) do not queue behind compute
#: kernels. The CPU backend parses both and ignores them.
GPU_OVERLAP_FLAGS = ("--xla_gpu_enable_latency_hiding_scheduler=true",
                     "--xla_gpu_enable_highest_priority_async_stream=true")


def backend_started() -> bool:
    """Whether a JAX backend already exists (then ``XLA_FLAGS`` are read already)."""
    from jax._src import xla_bridge  # no public query exists; present in jax 0.4 - 0.11

    return xla_bridge.backends_are_initialized()


def add_xla_flags(flags) -> bool:
    """Append ``flags`` (``--name=value``) to ``XLA_FLAGS``, except those whose name it
    already sets (the user's choice wins). Returns ``False``, changing nothing, when some are
    missing and a backend already started: XLA has read its flags, these would not apply."""
    current = os.environ.get("XLA_FLAGS", "").split()
    named = {f.split("=", 1)[0] for f in current}
    extra = [f for f in flags if f.split("=", 1)[0] not in named]
    if not extra:
        return True
    if backend_started():
        return False
    os.environ["XLA_FLAGS"] = " ".join(current + extra)
    return True


@dataclass(frozen=True)
class DataParallel:
    """Mesh and shardings of a data-parallel job."""

    mesh: Mesh

    @classmethod
    def create(cls) -> DataParallel:
        return cls(Mesh(np.asarray(jax.devices()), ("data",)))

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    @property
    def batch(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec("data"))

    @property
    def stacked(self) -> NamedSharding:
        """Batches of several micro-steps stacked on a leading axis: that axis whole, the
        batch axis (the second) split as :attr:`batch` splits it."""
        return NamedSharding(self.mesh, PartitionSpec(None, "data"))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def check_batch(self, batch_size: int, what: str = "train.batch_size") -> None:
        n = self.num_devices
        if batch_size % n:
            raise ValueError(f"{what}={batch_size} is not divisible by the {n} devices; "
                             f"use a multiple of {n}")
        if batch_size % jax.process_count():
            raise ValueError(f"{what}={batch_size} is not divisible by the "
                             f"{jax.process_count()} processes")

    def put_local_batch(self, local: dict, global_batch: int) -> dict:
        """Place this process's slice of a global batch (every array's leading axis)."""
        return {k: jax.make_array_from_process_local_data(
                    self.batch, v, (global_batch, *v.shape[1:])) for k, v in local.items()}

    def put_local_stack(self, local: dict, global_batch: int) -> dict:
        """Place this process's slice of ``K`` stacked global batches: every array is
        ``(K, rows of this process, ...)``, the global one ``(K, global_batch, ...)``."""
        return {k: jax.make_array_from_process_local_data(
                    self.stacked, v, (v.shape[0], global_batch, *v.shape[2:]))
                for k, v in local.items()}

    def put_global(self, tree, sharding: NamedSharding | None = None):
        """Place arrays that every process holds in full (replicated by default)."""
        sharding = sharding or self.replicated

        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

        return jax.tree.map(put, tree)
