"""The one device mesh of pdekit: every device of every process on one axis, ``"data"``.

Training shards its batch over it (parameters replicated); evaluation shards its rollouts
over it. It lives below both packages so that each can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


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
