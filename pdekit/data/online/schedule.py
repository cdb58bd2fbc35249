"""The bookkeeping of online data: settings, and which trajectory sits in which buffer slot.

Pure Python (no JAX): everything here is a function of the settings and the step, which is
what lets a resumed run rebuild its buffer from the checkpoint's step alone.

*Items.* Item ``g = 0, 1, 2, ...`` is the ``g``-th trajectory ever put into the buffer. It goes
into slot ``g % buffer_size`` and is trajectory ``g % total`` of the stream (``g`` when
``total`` is null), so with a finite ``total`` the run cycles over one fixed set of ``total``
trajectories, each regenerated (bitwise the same) whenever its turn comes again.

*Refreshes.* Step 0 starts with items ``0 .. buffer_size-1``. At every step ``s > 0`` with
``s % refresh_every == 0`` the next ``refresh_count`` items replace the oldest ones, before
the batch of step ``s`` is drawn. A buffer that already holds the whole fixed set
(``total == buffer_size``) is never refreshed.

*Windows.* A batch draws windows (slot, start frame) of the buffer without replacement within
a *period*: ``refresh_every`` steps while the buffer is refreshed (its content is constant over
one), else an epoch of ``num_windows // batch`` steps, as a file run's epoch. Period ``q``
uses one permutation of the buffer's windows seeded by ``(window seed, q)``; step ``i`` of the
period takes its rows ``i*B .. i*B+B-1`` (modulo the number of windows).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

SOURCES = ("file", "online")
PRECISIONS = ("float32", "float64")


@dataclasses.dataclass
class OnlineSettings:
    """``data.online``: the buffer of ``data.source=online`` (docs/training.md).

    Also the typed schema of those keys (``pdekit.training.config.DataConfig.online``).
    """

    buffer_size: int = 2048  # trajectories held on the devices (replicated on each)
    refresh_count: int = 512  # trajectories replaced at each refresh (one compiled solve)
    refresh_every: int = 100  # steps between refreshes
    total: int | None = None  # distinct trajectories ever generated; null = no limit
    calibration: int | None = None  # trajectories 0..n-1 give the statistics; null = buffer_size
    seed: int = 0  # the stream is `pdekit generate pde=<preset> split=train seed=<seed>`'s
    solve_precision: str = "float64"  # dtype of the solve (stored fields are float32)

    @property
    def calibration_size(self) -> int:
        return int(self.buffer_size if self.calibration is None else self.calibration)

    def problems(self) -> list[str]:
        """One line per impossible setting, each naming its key (empty when all are fine)."""
        b, r, e, n = self.buffer_size, self.refresh_count, self.refresh_every, self.total
        out = []
        if b < 1:
            out.append(f"data.online.buffer_size must be >= 1, got {b}")
        if r < 1:
            out.append(f"data.online.refresh_count must be >= 1, got {r}")
        elif r > b:
            out.append(f"data.online.refresh_count={r} exceeds data.online.buffer_size={b}: "
                       "a refresh replaces at most the whole buffer")
        if e < 1:
            out.append(f"data.online.refresh_every must be >= 1 (steps), got {e}")
        if n is not None and n < b:
            out.append(f"data.online.buffer_size={b} exceeds data.online.total={n}: the "
                       "buffer would hold the same trajectory twice; lower the buffer or "
                       "raise the total (null = no limit)")
        c = self.calibration_size
        if c < 1:
            out.append(f"data.online.calibration must be >= 1 (null = buffer_size), got {c}")
        elif n is not None and c > n:
            out.append(f"data.online.calibration={c} exceeds data.online.total={n}")
        if not 0 <= self.seed < 2**31:
            out.append(f"data.online.seed must be in [0, 2**31), got {self.seed}")
        if self.solve_precision not in PRECISIONS:
            out.append(f"data.online.solve_precision must be one of {PRECISIONS}, got "
                       f"{self.solve_precision!r}")
        return out


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Which item (and so which trajectory) each buffer slot holds at each step."""

    buffer_size: int
    refresh_count: int
    refresh_every: int
    total: int | None = None

    @classmethod
    def of(cls, s: OnlineSettings) -> Schedule:
        return cls(int(s.buffer_size), int(s.refresh_count), int(s.refresh_every),
                   None if s.total is None else int(s.total))

    @property
    def refreshing(self) -> bool:
        """Whether refreshes change anything (not when the buffer holds the whole set)."""
        return self.total is None or self.total > self.buffer_size

    def refreshes(self, step: int) -> int:
        """Refreshes done before the batch of ``step`` is drawn."""
        return int(step) // self.refresh_every if self.refreshing else 0

    def generated(self, step: int) -> int:
        """Items generated so far when the batch of ``step`` is drawn."""
        return self.buffer_size + self.refresh_count * self.refreshes(step)

    def trajectory(self, items) -> np.ndarray:
        """The stream index of each item: ``g % total`` (``g`` without a total)."""
        items = np.asarray(items, np.int64)
        return items % self.total if self.total is not None else items

    def slot_items(self, step: int) -> np.ndarray:
        """``(buffer_size,)``: the item in each slot at ``step`` (the newest ``g`` congruent to
        the slot modulo ``buffer_size`` among those generated)."""
        b, g = self.buffer_size, self.generated(step)
        j = np.arange(b, dtype=np.int64)
        return j + b * ((g - 1 - j) // b)

    def refresh_items(self, r: int) -> np.ndarray:
        """The items of refresh ``r >= 1``."""
        lo = self.buffer_size + (int(r) - 1) * self.refresh_count
        return np.arange(lo, lo + self.refresh_count, dtype=np.int64)

    def counters(self, step: int) -> dict:
        """The counters a checkpoint of ``step`` records (``online`` in its meta)."""
        g = self.generated(step)
        return {"generated": g, "refreshes": self.refreshes(step),
                "distinct": g if self.total is None else min(g, self.total)}

    def period(self, step: int, batch: int, num_windows: int) -> tuple[int, int]:
        """``(q, first row)`` of ``step``: its period and where its rows start in that
        period's permutation of the buffer's windows."""
        if batch > num_windows:
            raise ValueError(f"train.batch_size={batch} exceeds the {num_windows} windows of "
                             "the online buffer; raise data.online.buffer_size")
        length = self.refresh_every if self.refreshing else num_windows // batch
        q, i = divmod(int(step), length)
        return q, (i * batch) % num_windows


def padded(n: int, devices: int) -> int:
    """``n`` rounded up to a multiple of ``devices`` (a solve is sharded over them)."""
    return devices * math.ceil(n / devices)
