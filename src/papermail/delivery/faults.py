"""Test-only fault injection for the send path, so crash tests can kill a worker at an exact point.

``PAPERMAIL_FAULT_AT`` is read only here, only by :mod:`papermail.delivery.send`, and never set in
production. Values:

* ``before_smtp:<n>``: just before its n-th SMTP transaction (before the row is marked as handed
  over), this process SIGKILLs its whole process group: the worker dies as with ``kill -9``.
* ``after_250:<n>``: the same, after the server's 250 for the n-th message and before the row is
  recorded as sent (the window that makes a row *uncertain*).
* ``poison:<address>``: this process SIGKILLs itself (only itself, so a Celery pool child dies and
  is replaced) whenever it is about to send to that address: a message that crashes every worker.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "PAPERMAIL_FAULT_AT"
POINTS = ("before_smtp", "after_250", "poison")


class FaultHook:
    """Counts the points the send path passes and kills this process where the variable says."""

    def __init__(self, spec: str) -> None:
        point, _, arg = spec.partition(":")
        if point not in POINTS or not arg:
            raise ValueError(f"{FAULT_ENV} must be before_smtp:<n>, after_250:<n> or poison:<address>")
        self.point, self.arg = point, arg
        self.counts = dict.fromkeys(POINTS, 0)

    def reached(self, point: str, recipient: str) -> None:
        """Called by the send path at ``point``; kills the process if this is the configured spot."""
        self.counts[point] = self.counts.get(point, 0) + 1
        if self.point == "poison" and point == "before_smtp" and recipient == self.arg:
            os.kill(os.getpid(), signal.SIGKILL)
        if point == self.point and self.counts[point] == int(self.arg):
            os.killpg(os.getpgrp(), signal.SIGKILL)


class _NoFaults:
    def reached(self, point: str, recipient: str) -> None:
        pass


_hook: FaultHook | _NoFaults | None = None


def fault_hook() -> FaultHook | _NoFaults:
    """The process's hook, built from the environment on first use."""
    global _hook
    if _hook is None:
        spec = os.environ.get(FAULT_ENV, "")
        _hook = FaultHook(spec) if spec else _NoFaults()
    return _hook
