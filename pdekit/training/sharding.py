"""Data parallelism: one mesh axis ``"data"`` over every device of every process.

The mesh itself is :class:`pdekit._mesh.DataParallel`. Parameters and optimiser state are replicated; a batch is split along its leading axis. The
same code runs on one device, N simulated CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``), several GPUs, and several hosts.

Several processes: :func:`maybe_initialize_distributed` calls ``jax.distributed.initialize``
when ``JAX_COORDINATOR_ADDRESS`` (with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``) or
``PDEKIT_DISTRIBUTED=1`` (Slurm / Open MPI auto-detection) is set. It must run before
anything starts a JAX backend; ``pdekit train`` calls it first, and importing
``pdekit.training`` starts none. CPU processes talk through gloo, so a multi-process job
runs (and is tested) on one machine without GPUs.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils

#: Environment variables that mean "this is one process of a multi-process job".
_DIST_ENV = ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS")


def distributed_requested() -> bool:
    """Whether the environment asks for a multi-process job."""
    return any(os.environ.get(k) for k in _DIST_ENV) or os.environ.get("PDEKIT_DISTRIBUTED") == "1"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _backend_started() -> bool:
    from jax._src import xla_bridge  # no public query exists; present in jax 0.4 - 0.11

    return xla_bridge.backends_are_initialized()


def _use_gloo_on_cpu() -> None:
    """CPU collectives across processes via gloo, unless the user chose an implementation."""
    if os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        return
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # a jax without the option: its default applies
        pass


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize()`` once when the environment configures a job.

    ``JAX_COORDINATOR_ADDRESS=host:port``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` name
    the job explicitly; with ``PDEKIT_DISTRIBUTED=1`` alone, jax detects Slurm or Open MPI.
    Returns whether the process is part of a multi-process job. Raises ``ValueError`` (one
    line) on a malformed environment and ``RuntimeError`` when a backend already started.
    """
    if not distributed_requested():
        return False
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    num, pid = _env_int("JAX_NUM_PROCESSES"), _env_int("JAX_PROCESS_ID")
    if num is not None and not 0 <= (pid if pid is not None else 0) < num:
        raise ValueError(f"JAX_PROCESS_ID={pid} must be in 0..{num - 1} (JAX_NUM_PROCESSES={num})")
    if _backend_started():
        raise RuntimeError("jax.distributed must be initialised before any JAX computation: "
                           "call pdekit.training.sharding.maybe_initialize_distributed() "
                           "first in the script")
    address = os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("COORDINATOR_ADDRESS")
    _use_gloo_on_cpu()
    try:
        jax.distributed.initialize(coordinator_address=address or None, num_processes=num,
                                   process_id=pid)
    except ValueError as err:  # jax names the missing value; say which variable sets it
        raise ValueError(f"jax.distributed: {err} (set JAX_COORDINATOR_ADDRESS, "
                         "JAX_NUM_PROCESSES and JAX_PROCESS_ID, or run under Slurm/MPI "
                         "with PDEKIT_DISTRIBUTED=1)") from None
    return jax.process_count() > 1


def is_primary() -> bool:
    """Process 0: the one that writes logs, reports and the run directory's files."""
    return jax.process_index() == 0


def all_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(np.all(multihost_utils.process_allgather(np.int32(bool(flag)))))


def any_true(flag: bool) -> bool:
    """Whether ``flag`` holds on some process (a collective: every process must call it)."""
    return not all_true(not flag)


def from_primary(value: int) -> int:
    """Process 0's ``value`` on every process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return int(value)
    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def barrier(name: str) -> None:
    """Wait until every process reaches ``name``."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
