"""A wall-clock training budget: where the learning-rate schedule should end.

With ``train.time_budget_s > 0`` the trainer asks :class:`WallClockBudget` at every host
synchronisation for the *horizon*: the step the run will reach when the budget is spent.
The budget counts the step loop (compilation, validation and checkpoints included), not
opening the data or building the model. The time left is shared as

    time left = n / rate + (n / valid_every) * t_valid + t_valid

for ``n`` more steps: the step rate is measured since the first synchronisation with the
validations taken out (so neither compilation nor a validation distorts it), ``t_valid`` is
the cost of one warm validation (:meth:`WallClockBudget.validated`), paid every
``valid_every`` steps and once more by the validation that closes the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class WallClockBudget:
    """Horizon estimates for a budget of ``budget_s`` seconds (``0`` = no budget).

    ``elapsed_s`` is the time already spent by earlier (interrupted) attempts of the run,
    restored from the checkpoint so that a resumed run keeps the same total budget.
    ``valid_every`` is the period of the run's validations (``0`` = none between syncs).
    """

    def __init__(self, budget_s: float, max_steps: int, elapsed_s: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter, valid_every: int = 0):
        self.budget_s, self.max_steps = float(budget_s), int(max_steps)
        self.clock, self.spent_before = clock, float(elapsed_s)
        self.valid_every = int(valid_every)
        self.t_start = clock()
        self.first: tuple[int, float] | None = None
        self.paused_s = 0.0   # validation time since the first synchronisation
        self.reserve_s = 0.0  # one warm validation, once one has been timed

    @property
    def enabled(self) -> bool:
        return self.budget_s > 0

    @property
    def timed(self) -> bool:
        """Whether a warm validation has been timed in this attempt."""
        return self.reserve_s > 0.0

    def elapsed(self) -> float:
        """Seconds of the budget used so far, earlier attempts included."""
        return self.spent_before + self.clock() - self.t_start

    def validated(self, total_s: float, warm_s: float | None = None) -> None:
        """Record a validation: ``total_s`` seconds spent in it (left out of the step rate)
        and ``warm_s`` the cost of one validation without compilation (default: ``total_s``;
        the cheapest seen is kept)."""
        if self.first is not None:
            self.paused_s += max(float(total_s), 0.0)
        warm = max(float(total_s if warm_s is None else warm_s), 1e-9)
        self.reserve_s = warm if not self.timed else min(self.reserve_s, warm)

    def horizon(self, done: int, current: int) -> int:
        """The step at which the run should end, asked at a synchronisation after ``done``
        steps; ``current`` is the horizon in force. Never below ``done``, never above
        ``max_steps``; ``done`` itself when the budget is spent."""
        if not self.enabled:
            return current
        now = self.clock()
        remaining = self.budget_s - self.elapsed() - self.reserve_s
        if remaining <= 0:
            return done
        stepping = 0.0 if self.first is None else now - self.first[1] - self.paused_s
        if self.first is None or done <= self.first[0] or stepping <= 0:
            if self.first is None:
                self.first = (done, now)
            return max(done, min(current, self.max_steps))
        n = done - self.first[0]  # n steps took `stepping` s (+ a validation per valid_every)
        cost = stepping + (n * self.reserve_s / self.valid_every if self.valid_every > 0 else 0.0)
        return int(min(self.max_steps, done + math.floor(remaining * n / cost)))
