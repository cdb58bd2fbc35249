"""Opening the training/validation windows, and the batches of the step loop.

``data.source=file`` (the default): windows of ``data.train_path``, sampled on the host and
placed by a background :class:`Prefetcher`. ``data.source=online``: an
:class:`pdekit.data.online.OnlineSource` solving the ``pde`` preset's trajectories on the
devices, whose batches :class:`OnlineBatches` dispatches in the loop's own thread (they are
device computations, asynchronous like the steps). Validation reads ``data.valid_path`` in
both cases.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
from omegaconf import OmegaConf

from pdekit._mesh import DataParallel
from pdekit.data.online import SOURCES, OnlineSettings, OnlineSource
from pdekit.data.protocols import build_protocol
from pdekit.data.reader import open_trajectories
from pdekit.data.stats import NormStats
from pdekit.data.windows import WindowDataset
from pdekit.models.conditioning import CondNorm


def _check_path(path, key: str) -> None:
    if not Path(path).exists():
        raise FileNotFoundError(f"{key}: data file {path} does not exist "
                                "(generate it with `pdekit generate ...`)")


def source_of(cfg) -> str:
    """``data.source`` (``file`` when the config predates the key)."""
    return str(cfg.data.get("source") or "file")


def open_data(cfg, dp: DataParallel | None = None):
    """(train, valid or None) window datasets; training windows hold ``unroll*future`` frames.
    With ``data.source=online`` the training windows are an :class:`OnlineSource` on ``dp``'s
    mesh (its calibration batch is solved here)."""
    if source_of(cfg) == "online":
        return open_online(cfg, dp)
    d, t = cfg.data, cfg.train
    _check_path(d.train_path, "data.train_path")
    if d.valid_path:
        _check_path(d.valid_path, "data.valid_path")
    common = dict(history=int(d.history), stride=int(d.stride), cond_keys=tuple(d.cond_keys),
                  ram_budget_bytes=int(d.ram_budget_bytes))
    tr = open_trajectories(d.train_path)
    stats = None  # the training file's stored statistics (data.normalization=zscore)
    if d.normalization == "none":  # raw fields: statistics that change nothing
        stats = NormStats.identity(tr.channels, tr.spatial_dims, int(d.stride))
    train = WindowDataset(tr, future=int(d.future) * int(t.unroll), stats=stats,
                          **common)
    check_windows(train, cfg, "data.train_path")
    valid = None
    if d.valid_path:
        valid = WindowDataset(d.valid_path, future=int(d.future), stats=train.stats, **common)
        check_windows(valid, cfg, "data.valid_path")
    return train, valid


def online_settings(cfg) -> OnlineSettings:
    """``data.online`` as :class:`OnlineSettings`."""
    return OnlineSettings(**OmegaConf.to_container(cfg.data.online, resolve=True))


def source_checks(cfg) -> list[tuple[bool, str]]:
    """``(ok, one line naming the key)`` for ``data.source`` and, when it is ``online``, for
    ``data.online.*`` and the ``pde`` preset it needs (used by ``training.config.validate``)."""
    source = source_of(cfg)
    if source not in SOURCES:
        return [(False, f"data.source must be one of {SOURCES}, got {source!r}")]
    if source == "file":
        return []
    has_pde = cfg.get("pde") is not None and "equation" in cfg.pde
    return [(has_pde, "data.source=online needs the preset of the PDE to solve: add pde=<name> "
             "(pdekit/configs/pde/, the presets of `pdekit generate`)")] + [
        (False, msg) for msg in online_settings(cfg).problems()]


def open_online(cfg, dp: DataParallel | None = None):
    """``(OnlineSource, valid WindowDataset or None)`` for ``data.source=online``: the
    protocol is the train split of ``cfg.pde`` (checked as by ``pdekit generate``), the
    validation file must hold the same PDE at the same shape."""
    d, t = cfg.data, cfg.train
    for ok, msg in source_checks(cfg):
        if not ok:
            raise ValueError(msg)
    if d.valid_path:
        _check_path(d.valid_path, "data.valid_path")
    protocol = build_protocol(OmegaConf.to_container(cfg.pde, resolve=True), "train")
    train = OnlineSource(protocol, online_settings(cfg), history=int(d.history),
                         future=int(d.future) * int(t.unroll), stride=int(d.stride),
                         cond_keys=tuple(d.cond_keys), window_seed=int(cfg.seed),
                         normalization=str(d.normalization), dp=dp)
    if int(t.batch_size) > train.num_windows:
        raise ValueError(f"train.batch_size={int(t.batch_size)} exceeds the {train.num_windows} "
                         "windows of the online buffer; raise data.online.buffer_size")
    valid = None
    if d.valid_path:
        valid = WindowDataset(d.valid_path, history=int(d.history), future=int(d.future),
                              stride=int(d.stride), cond_keys=tuple(d.cond_keys),
                              ram_budget_bytes=int(d.ram_budget_bytes), stats=train.stats)
        check_windows(valid, cfg, "data.valid_path")
        tr = valid.trajectories
        if (tr.pde, tr.channels, tr.spatial_shape) != (train.pde, train.channels,
                                                        train.spatial_shape):
            raise ValueError(
                f"data.valid_path: {d.valid_path} holds {tr.pde!r} data of {tr.channels} "
                f"channel(s) on {tr.spatial_shape}, but pde={train.pde} generates "
                f"{train.channels} on {train.spatial_shape}; generate the validation split "
                "from the same preset (pdekit generate pde=... split=valid)")
    return train, valid


def cond_ranges(cfg, train_ds) -> dict[str, list[float]]:
    """``{cond key: [lo, hi]}``: the training split's range of each conditioning scalar, or the
    user's ``data.cond_range`` override for a key. Stored in the run's ``derived.cond_range``;
    models map each range to ``[0, data.cond_span]`` (:class:`pdekit.models.CondNorm`)."""
    keys = list(cfg.data.cond_keys)
    override = dict(cfg.data.get("cond_range") or {})
    unknown = sorted(set(override) - set(keys))
    if unknown:
        raise ValueError(f"data.cond_range names {', '.join(unknown)}, which are not in "
                         f"data.cond_keys={keys}")
    table = np.asarray(train_ds.cond, np.float64).reshape(-1, len(keys))
    out = {}
    for i, k in enumerate(keys):
        if k in override:
            lo, hi = (float(v) for v in override[k])
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"data.cond_range.{k} must be [lo, hi] with finite lo < hi, "
                                 f"got {list(override[k])}")
        else:
            lo, hi = float(table[:, i].min()), float(table[:, i].max())
        out[k] = [lo, hi]
    return out


def cond_norm_for(cfg, derived) -> CondNorm | None:
    """The run's :class:`CondNorm`: ``derived.cond_range`` (in ``data.cond_keys`` order) mapped
    to ``[0, data.cond_span]``; ``None`` (cond as it is) when the run records no ranges."""
    ranges = (derived or {}).get("cond_range")
    if not ranges:
        return None
    keys = list(cfg.data.cond_keys)
    missing = [k for k in keys if k not in ranges]
    if missing:
        raise ValueError(f"derived.cond_range lacks {', '.join(missing)} of data.cond_keys")
    return CondNorm.from_ranges([ranges[k] for k in keys], float(cfg.data.cond_span))


def check_windows(ds, cfg, what: str) -> None:
    if ds.num_windows < 1:
        need = cfg.data.history + cfg.data.future * cfg.train.unroll
        raise ValueError(f"{what}: trajectories are too short for history + unroll*future = "
                         f"{need} frames at stride {cfg.data.stride}")


class Prefetcher:
    """Produce device-placed batches for steps ``start..stop-1`` in a background thread.

    ``sample(step)`` returns this process's host batch; ``place(batch)`` puts it on the
    devices. ``wait_s`` accumulates the time the consumer spent waiting for data.
    """

    _DONE = object()

    def __init__(self, sample, place, start: int, stop: int, depth: int = 2):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.wait_s = 0.0
        self._thread = threading.Thread(
            target=self._run, args=(sample, place, start, stop), daemon=True)
        self._thread.start()

    def _run(self, sample, place, start, stop):
        try:
            for step in range(start, stop):
                if self._stop.is_set():
                    return
                item = (step, place(sample(step)))
                while not self._stop.is_set():
                    try:
                        self._q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            self._q.put(self._DONE)
        except BaseException as err:  # forwarded to the consumer
            self._q.put(err)

    def __iter__(self):
        while True:
            t0 = time.perf_counter()
            item = self._q.get()
            self.wait_s += time.perf_counter() - t0
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self._thread.join(timeout=5)


def is_online(ds) -> bool:
    """Whether ``ds`` makes its batches on the devices (an :class:`OnlineSource`)."""
    return bool(getattr(ds, "on_device", False))


class OnlineBatches:
    """The :class:`Prefetcher` interface for a source whose batches are device computations.

    Item ``i`` is ``(i, batch of step i)``, or with ``micro_steps = k > 1`` ``(i, the
    stacked batches of steps i*k .. i*k+k-1)``, for ``i`` in ``start..stop-1``. Nothing runs
    in a background thread: each batch (and each refresh of the buffer) is dispatched when the
    loop asks for it, from the loop's thread, and runs on the devices between the steps. So
    the collectives of the data and of the steps are issued in the same order on every
    process, and nothing waits for the host. ``wait_s`` is the host time spent dispatching.
    :meth:`close` reports a non-finite solve (process 0, one line).
    """

    def __init__(self, source, batch_size: int, start: int, stop: int, micro_steps: int = 1):
        self.source, self.batch_size = source, int(batch_size)
        self.start, self.stop, self.k = int(start), int(stop), int(micro_steps)
        self.wait_s = 0.0

    def __iter__(self):
        for i in range(self.start, self.stop):
            t0 = time.perf_counter()
            if self.k == 1:
                batch = self.source.batch(i, self.batch_size)
            else:
                batch = self.source.batches(i * self.k, self.k, self.batch_size)
            self.wait_s += time.perf_counter() - t0
            yield i, batch

    def close(self) -> None:
        try:
            problem = self.source.problem()
        except Exception:  # noqa: BLE001 - the devices failed: the loop's own error says so
            problem = None
        if problem and jax.process_index() == 0:
            print(f"pdekit train: online data: {problem}", file=sys.stderr)
        self.source.close()


def host_batch_sampler(ds, batch_size: int, seed: int):
    """``step -> this process's part of the global batch`` (deterministic in (seed, step))."""
    def sample(step: int) -> dict:
        batch = ds.sample_batch(step, batch_size, seed=seed, process_index=jax.process_index(),
                                process_count=jax.process_count())
        return {k: np.asarray(v, np.float32) for k, v in batch.items()}

    return sample
