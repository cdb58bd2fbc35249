"""Data parallelism: one mesh axis ``"data"`` over every device of every process.

Parameters and optimiser state are replicated; a batch is split along its leading axis. The
same code runs on one device, N simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``), several GPUs, and several hosts
(``jax.distributed`` is initialised when its environment is set).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Environment variables that mean "this is one process of a multi-process job".
_DIST_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize()`` once when a coordinator address is configured.

    Also honours cluster auto-detection (SLURM, Open MPI) when ``PDEKIT_DISTRIBUTED=1``.
    Returns whether the process is part of a multi-process job.
    """
    wanted = any(os.environ.get(k) for k in _DIST_ENV) or os.environ.get("PDEKIT_DISTRIBUTED") == "1"
    if not wanted:
        return False
    if not jax.distributed.is_initialized():
        jax.distributed.initialize()
    return jax.process_count() > 1


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

    def put_global(self, tree, sharding: NamedSharding | None = None):
        """Place arrays that every process holds in full (replicated by default)."""
        sharding = sharding or self.replicated

        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

        return jax.tree.map(put, tree)
