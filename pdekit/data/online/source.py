""":class:`OnlineSource`: training windows drawn from trajectories solved on the devices.

What it computes, and where:

* **Solves.** A chunk of trajectories is ONE compiled call of the generator's own vmapped
  solver (:func:`pdekit.data.protocols_eqs.make_batch_solver`'s, same protocol, same keys
  ``fold_in(key(split_seed), k)``), its trajectory axis sharded over the mesh like a batch.
  Trajectory ``k`` is therefore bitwise trajectory ``k`` of ``pdekit generate pde=<preset>
  split=train seed=<data.online.seed>``, whatever the chunk, buffer or device count.
* **The buffer** ``(buffer_size, keep, C, *S)`` float32 and its ``cond`` rows are replicated
  on every device. New trajectories are scattered into their slots by one jitted call
  (donated buffer); a batch is gathered by another, each device gathering only its rows.
  Nothing is copied to the host after the calibration.
* **Calibration.** At start, trajectories ``0 .. calibration-1`` are solved once and copied to
  the host: their moments are the normalisation statistics (as a file's ``stats/``), their
  ``cond`` rows give ``derived.cond_range``, and a non-finite one fails the run at start with
  ``pdekit generate``'s error (:func:`pdekit.data.writer.check_finite_solve`).

Every call is dispatched from the caller's thread and runs asynchronously on the devices,
interleaved with the training steps. Which trajectory is where, and which windows a step
draws, is :mod:`pdekit.data.online.schedule`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, Float, Int

from pdekit._mesh import DataParallel
from pdekit.data.online.schedule import OnlineSettings, Schedule, padded
from pdekit.data.protocols import Protocol
from pdekit.data.protocols_eqs import _ByValue, _compiled
from pdekit.data.seeds import split_seed
from pdekit.data.stats import NormStats, StatsAccumulator
from pdekit.data.writer import check_finite_solve, device_memory_budget, x64

Batch = dict[str, Float[Array, "..."]]
_NONE = np.iinfo(np.int32).max  # "no non-finite trajectory seen"


@functools.lru_cache(maxsize=8)
def _solver(pv: _ByValue, cond_keys: tuple[str, ...], stride: int, dp: DataParallel,
            precision64: bool):
    """``(seed, index) -> (u, cond, bad)`` for a chunk of trajectories: ``pdekit generate``'s
    compiled vmapped solver, each device solving its rows of the chunk (``shard_map``: no
    communication, the same computation as a smaller chunk on one device); ``cond`` as a
    file's (``dt`` is the model step); ``bad`` flags a non-finite trajectory. Cached, so the
    sources of a process share their compilations."""
    solve = _compiled(pv, "float32")
    del precision64  # part of the cache key only: the call's dtype follows jax.enable_x64

    def post(u, params):
        cols = [stride * params["dt"] if k == "dt" else params[k] for k in cond_keys]
        cond = jnp.stack(cols, axis=1) if cols else jnp.zeros((u.shape[0], 0))
        bad = ~jnp.isfinite(u.reshape(u.shape[0], -1)).all(axis=1)
        return u, cond.astype(jnp.float32), bad

    rows = PartitionSpec("data")
    if dp.num_devices == 1:  # the generator's own compiled call, then one small one
        tail = jax.jit(post, out_shardings=dp.batch)
        return lambda seed, index: tail(*solve(seed, index)[:2])

    def local(seed, index: Int[Array, " n"]):
        return post(*solve(seed, index)[:2])

    # check_vma=False: the solver's scans carry replicated scalars (time) into varying state
    return jax.jit(jax.shard_map(local, mesh=dp.mesh, in_specs=(PartitionSpec(), rows),
                                 out_specs=(rows, rows, rows), check_vma=False))


class _Fns(NamedTuple):
    """The buffer's jitted functions (:func:`_device_fns`)."""

    empty: Callable
    insert: Callable
    permutation: Callable
    draw: Callable
    stack: Callable


@functools.lru_cache(maxsize=8)
def _device_fns(dp: DataParallel) -> _Fns:
    """The buffer's small jitted functions on ``dp``'s mesh (one set per mesh, shared by
    every source, so that a second source of the process compiles nothing new)."""
    repl, rows = dp.replicated, dp.batch

    @functools.partial(jax.jit, static_argnums=(0, 1, 2), out_shardings=repl)
    def empty(n: int, shape: tuple[int, ...], num_cond: int):
        return (jnp.zeros((n, *shape), jnp.float32), jnp.zeros((n, num_cond), jnp.float32),
                jnp.asarray(_NONE, jnp.int32))

    @functools.partial(jax.jit, donate_argnums=(0, 1), out_shardings=repl)
    def insert(u_buf, c_buf, first, slot, u, cond, bad, index):
        """Solved rows into their slots; ``first``: the lowest non-finite trajectory so far."""
        first = jnp.minimum(first, jnp.min(jnp.where(bad, index, _NONE)))
        return u_buf.at[slot].set(u), c_buf.at[slot].set(cond), first

    @functools.partial(jax.jit, static_argnums=(2,), out_shardings=repl)
    def permutation(seed, q, n: int):
        """Period ``q``'s order of the buffer's ``n`` windows."""
        return jax.random.permutation(jax.random.fold_in(jax.random.key(seed), q),
                                      n).astype(jnp.int32)

    @functools.partial(jax.jit, static_argnums=(6, 7, 8), out_shardings=rows)
    def draw(u_buf: Float[Array, "slots T C *S"], c_buf: Float[Array, "slots P"],
             perm: Int[Array, " windows"], first_row, mean: Float[Array, " C"],
             std: Float[Array, " C"], batch: int, history: int, offsets: tuple[int, ...]):
        """Rows ``first_row ..`` of ``perm`` as a normalised batch (each device its rows)."""
        starts = u_buf.shape[1] - offsets[-1]
        w = perm[(first_row + jnp.arange(batch)) % perm.shape[0]]
        slot, start = w // starts, w % starts
        raw = u_buf[slot[:, None], start[:, None] + jnp.asarray(offsets)[None, :]]
        shape = (-1,) + (1,) * (u_buf.ndim - 3)
        u = (raw - mean.reshape(shape)) / std.reshape(shape)  # (B, H+F, C, *S)
        return {"u_in": u[:, :history], "u_out": u[:, history:], "cond": c_buf[slot]}

    stacked = NamedSharding(dp.mesh, PartitionSpec(None, "data"))
    stack = jax.jit(lambda *parts: jax.tree.map(lambda *a: jnp.stack(a), *parts),
                    out_shardings=stacked)
    return _Fns(empty, insert, permutation, draw, stack)


def _host(x) -> np.ndarray:
    """A replicated array's values on this host (every process holds them all)."""
    return np.asarray(x.addressable_data(0))


class OnlineSource:
    """A buffer of solver trajectories on the devices, serving normalised training windows.

    Quacks like :class:`pdekit.data.WindowDataset` where training reads one (``stats``,
    ``cond``, ``channels``, ``spatial_shape``, ``num_cond``, ``num_windows``), but its batches
    are device arrays: :meth:`batch` (``on_device`` tells the trainer). ``history``,
    ``future`` and ``stride`` define windows as a file's (``docs/data.md``); ``window_seed``
    (the run's ``seed``) orders them.
    """

    on_device = True

    def __init__(self, protocol: Protocol, settings: OnlineSettings, *, history: int,
                 future: int, stride: int, cond_keys, window_seed: int,
                 normalization: str = "zscore", dp: DataParallel | None = None):
        p = self.protocol = protocol
        self.settings, self.schedule = settings, Schedule.of(settings)
        self.history, self.future, self.stride = int(history), int(future), int(stride)
        self.cond_keys = tuple(cond_keys)
        self.span = (self.history + self.future - 1) * self.stride + 1
        if self.span > p.keep:
            raise ValueError(f"data: a window of history={history} + future={future} frames at "
                             f"stride {stride} spans {self.span} frames, but pde={p.name} "
                             f"stores {p.keep} per trajectory (pde keep / frames)")
        self.starts_per_trajectory = p.keep - self.span + 1
        self.num_windows = self.schedule.buffer_size * self.starts_per_trajectory
        self.dp = dp or DataParallel.create()
        self.seed = split_seed(p.name, "train", int(settings.seed))
        self.window_seed = split_seed(p.name, "online-windows", int(window_seed))
        self.precision64 = settings.solve_precision == "float64"
        n = self.dp.num_devices
        per_device = max(1, device_memory_budget() // 2 // p.bytes_per_trajectory(
            8 if self.precision64 else 4, 4))  # half: the model trains on the same devices
        self.chunk = min(padded(self.schedule.refresh_count, n), per_device * n)
        self._check_cond_keys()
        self._solve = _solver(_ByValue(p), self.cond_keys, self.stride, self.dp, self.precision64)
        self._fns = _device_fns(self.dp)
        self._buf = None  # (u, cond, first non-finite trajectory) on the devices
        self._at = None  # the step the buffer is at
        self._perm = (None, None)
        self.stats, self.cond = self._calibrate(normalization)
        std = np.where(self.stats.std > 0, self.stats.std, 1.0)  # as NormStats.normalize
        self._norm = (self._put(self.stats.mean.astype(np.float32), self.dp.replicated),
                      self._put(std.astype(np.float32), self.dp.replicated))
        self._offsets = tuple(int(o) for o in self.stride * np.arange(self.history + self.future))

    # --- what training reads -------------------------------------------------------------
    @property
    def pde(self) -> str:
        return self.protocol.name

    @property
    def channels(self) -> int:
        return self.protocol.channels

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return (self.protocol.resolution,) * self.protocol.spatial_dims

    @property
    def num_cond(self) -> int:
        return len(self.cond_keys)

    def counters(self, step: int) -> dict:
        """The schedule's counters at ``step`` (recorded with each checkpoint)."""
        return self.schedule.counters(step)

    # --- solving ---------------------------------------------------------------------------
    def _check_cond_keys(self) -> None:
        """Every ``cond`` key other than ``dt`` must be a per-trajectory parameter."""
        p, n = self.protocol, self.chunk
        solve = _compiled(_ByValue(p), "float32")
        with x64(self.precision64):
            _, params, _ = jax.eval_shape(solve, jax.ShapeDtypeStruct((), jnp.uint32),
                                          jax.ShapeDtypeStruct((n,), jnp.int32))
        for k in self.cond_keys:
            if k != "dt" and (k not in params or params[k].shape != (n,)):
                have = ", ".join(name for name, v in params.items() if v.shape == (n,))
                raise ValueError(f"data.cond_keys: {k!r} is not a per-trajectory scalar of "
                                 f"pde={p.name}; available: {have}")

    def _put(self, x: np.ndarray, sharding: NamedSharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

    def _insert(self, buf, slots: np.ndarray, items: np.ndarray):
        """Solve ``items`` (chunk by chunk) into ``slots`` of ``buf``; the new ``buf``."""
        traj = self.schedule.trajectory(items)
        for lo in range(0, len(items), self.chunk):
            pick = np.minimum(np.arange(lo, lo + self.chunk), len(items) - 1)  # pad: repeats
            with x64(self.precision64):
                if self.dp.num_devices == 1:  # the arguments of pdekit generate's own call
                    seed, index = (jnp.asarray(self.seed, jnp.uint32),
                                   jnp.asarray(traj[pick], jnp.int32))
                else:  # global arrays (several processes): host scalar, rows over the mesh
                    seed = np.uint32(self.seed)
                    index = self._put(traj[pick].astype(np.int32), self.dp.batch)
                u, cond, bad = self._solve(seed, index)
            slot = self._put(slots[pick].astype(np.int32), self.dp.replicated)
            buf = self._fns.insert(*buf, slot, u, cond, bad, index)
        return buf

    def _empty(self, n: int):
        return self._fns.empty(n, self.protocol.stored_shape, self.num_cond)

    def solve_items(self, items) -> tuple[np.ndarray, np.ndarray]:
        """``(u, cond)`` of the given items on the host (``(n, keep, C, *S)``, ``(n, P)``)."""
        items = np.asarray(items, np.int64)
        buf = self._insert(self._empty(len(items)), np.arange(len(items)), items)
        return _host(buf[0]), _host(buf[1])

    def _calibrate(self, normalization: str) -> tuple[NormStats, np.ndarray]:
        p, n = self.protocol, self.settings.calibration_size
        items = np.arange(n)
        u, cond = self.solve_items(items)
        check_finite_solve(p, u, self.schedule.trajectory(items))
        if normalization == "none":
            return NormStats.identity(p.channels, p.spatial_dims, self.stride), cond
        acc = StatsAccumulator(p.channels, spatial_dims=p.spatial_dims, diff_stride=self.stride)
        acc.add(u)
        return acc.stats(), cond

    # --- the buffer over the steps ---------------------------------------------------------
    def _advance(self, step: int) -> None:
        """Bring the buffer to ``step``: apply the refreshes since the last call, or rebuild
        it from the schedule (a new or resumed run, or a step before the last one)."""
        sch, b = self.schedule, self.schedule.buffer_size
        if self._buf is not None and self._at <= step:
            for r in range(sch.refreshes(self._at) + 1, sch.refreshes(step) + 1):
                items = sch.refresh_items(r)
                self._buf = self._insert(self._buf, items % b, items)
        else:
            self._buf = self._insert(self._empty(b), np.arange(b), sch.slot_items(step))
        self._at = step

    def _permutation(self, q: int):
        if self._perm[0] != q:
            self._perm = (q, self._fns.permutation(np.uint32(self.window_seed), np.int32(q),
                                          self.num_windows))
        return self._perm[1]

    def batch(self, step: int, batch_size: int) -> Batch:
        """The global batch of ``step`` on the devices, sharded like a file run's: a function
        of the settings, the seeds and ``step`` only."""
        self._advance(step)
        q, first = self.schedule.period(step, batch_size, self.num_windows)
        return self._fns.draw(self._buf[0], self._buf[1], self._permutation(q), np.int32(first),
                            *self._norm, batch_size, self.history, self._offsets)

    def batches(self, step: int, count: int, batch_size: int) -> Batch:
        """The batches of steps ``step .. step+count-1`` stacked on a leading axis (micro-steps),
        that axis whole and the batch axis sharded."""
        return self._fns.stack(*[self.batch(step + i, batch_size) for i in range(count)])

    def buffer_at(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(trajectory of each slot, u, cond)`` of the buffer at ``step``, on the host."""
        self._advance(step)
        traj = self.schedule.trajectory(self.schedule.slot_items(step))
        return traj, _host(self._buf[0]), _host(self._buf[1])

    def problem(self) -> str | None:
        """The error of a non-finite solve since the start, or ``None`` (a host sync: call it
        when the run ends)."""
        if self._buf is None:
            return None
        first = int(_host(self._buf[2]))
        if first == _NONE:
            return None
        try:
            check_finite_solve(self.protocol, np.full((1, 1), np.nan), [first])
        except ValueError as err:
            return str(err)
        return None

    def close(self) -> None:
        """Free the buffer (the next :meth:`batch` rebuilds it)."""
        self._buf, self._at, self._perm = None, None, (None, None)


def buffer_bytes(protocol: Protocol, settings: OnlineSettings) -> int:
    """Device memory the buffer takes on EACH device (it is replicated)."""
    return int(settings.buffer_size) * math.prod(protocol.stored_shape) * 4
