"""A wall-clock training budget: where the learning-rate schedule should end.

With ``train.time_budget_s > 0`` the trainer asks :class:`WallClockBudget` at every host
synchronisation for the *horizon*: the step the run will reach when the budget is spent,
from the step rate measured since the first synchronisation (so compilation is paid from the
budget but does not distort the rate). The cosine schedule ends at that step and the run
stops there, so models of different speed each get a whole schedule in the same wall time.
The budget counts the step loop (compilation, validation and checkpoints included), not
opening the data or building the model. Validations between synchronisations are in the
measured rate; the one that closes the run comes after the last step, so once a validation
has been timed its cost is held back from the time left (:meth:`WallClockBudget.reserve`)
and the run ends, validated and saved, close to the budget rather than one validation late.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class WallClockBudget:
    """Horizon estimates for a budget of ``budget_s`` seconds (``0`` = no budget).

    ``elapsed_s`` is the time already spent by earlier (interrupted) attempts of the run,
    restored from the checkpoint so that a resumed run keeps the same total budget.
    """

    def __init__(self, budget_s: float, max_steps: int, elapsed_s: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.budget_s, self.max_steps = float(budget_s), int(max_steps)
        self.clock, self.spent_before = clock, float(elapsed_s)
        self.t_start = clock()
        self.first: tuple[int, float] | None = None
        self.reserve_s = 0.0  # cost of the closing validation, once one has been timed

    def reserve(self, seconds: float) -> None:
        """Record how long one validation took. The cheapest one is held back from the time
        left: the first also pays its compilation, which the closing one does not."""
        seconds = max(float(seconds), 0.0)
        self.reserve_s = seconds if self.reserve_s == 0.0 else min(self.reserve_s, seconds)

    @property
    def enabled(self) -> bool:
        return self.budget_s > 0

    def elapsed(self) -> float:
        """Seconds of the budget used so far, earlier attempts included."""
        return self.spent_before + self.clock() - self.t_start

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
        if self.first is None or done <= self.first[0] or now <= self.first[1]:
            if self.first is None:
                self.first = (done, now)
            return max(done, min(current, self.max_steps))
        rate = (done - self.first[0]) / (now - self.first[1])
        return int(min(self.max_steps, done + math.floor(rate * remaining)))
