"""Preemption: SIGTERM and SIGINT stop training at a step boundary with a checkpoint.

A cluster scheduler sends SIGTERM some seconds before it kills a job; Ctrl-C sends SIGINT.
While :class:`StopSignals` is active, either signal only sets a flag. The training loop
reads the flag (a host-side bool, no device synchronisation) after every step; it then saves
a checkpoint of that step and raises :class:`TrainingInterrupted`, which ``pdekit train``
turns into exit status ``128 + signal number`` (143 for SIGTERM, 130 for SIGINT), the
shell's convention for "ended by this signal". Running the same command again resumes.

Several processes must checkpoint the same step, so there the flag is combined across
processes (:func:`pdekit.training.sharding.any_true`) at the host synchronisations
(``train.log_every``) and the run stops at the first one after a signal. A second SIGINT
stops at once (``KeyboardInterrupt``), without a checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading

from pdekit.training.sharding import any_true, is_primary

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving the checkpoint of ``step``."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = int(signum), int(step)
        super().__init__(f"stopped by {signal.Signals(self.signum).name} at step {self.step}; "
                         "checkpoint saved, run the same command to resume")

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


class StopSignals:
    """Context manager: while active, SIGTERM/SIGINT request a stop instead of killing.

    Handlers can only be installed from the main thread; elsewhere this is inert (the
    signals keep their previous behaviour). The previous handlers are restored on exit.
    """

    def __init__(self, multi_process: bool = False):
        self.multi_process = multi_process
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        """Take over SIGTERM and SIGINT (from the main thread only; elsewhere a no-op)."""
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def restore(self) -> None:
        """Give the signals back their previous handlers."""
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now
        if self.signum is None and is_primary():  # os.write: the handler may interrupt a print
            os.write(2, f"pdekit train: {signal.Signals(signum).name} received; "
                     "saving a checkpoint at the next step boundary\n".encode())
        self.signum = self.signum or signum

    def at_step(self) -> bool:
        """Whether to stop after this step (single process: the flag, no synchronisation)."""
        return self.signum is not None and not self.multi_process

    def at_sync(self) -> bool:
        """Whether to stop at this host synchronisation; with several processes a collective
        that every process calls at the same step, true when any process got a signal."""
        if not self.multi_process:
            return self.signum is not None
        stop = any_true(self.signum is not None)
        if stop and self.signum is None:
            self.signum = signal.SIGTERM  # another process was signalled
        return stop
