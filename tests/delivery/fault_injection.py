"""Run ``papermail`` with a fault installed, so crash tests can kill a worker at an exact point.

    python -m tests.delivery.fault_injection SPEC worker [options…]

The fault wraps :meth:`papermail.mail.outbox.Outbox.send` in this process (and so in the pool
processes it forks); production code carries none of it. SPEC is one of:

* ``before_smtp:<n>``: before its n-th message is paced and handed over, this process SIGKILLs its
  whole process group: the worker dies as with ``kill -9``, the row not yet handed over.
* ``after_250:<n>``: the same, after the relay accepted the n-th message and before the row is
  recorded as sent (the window that makes a row *uncertain*).
* ``poison:<address>``: the process about to send to that address SIGKILLs itself (only itself,
  so a Celery pool child dies and is replaced): a message that crashes every worker.
"""

from __future__ import annotations

import os
import signal
import sys

from papermail.cli import main
from papermail.mail.outbox import Outbox, Verdict

POINTS = ("before_smtp", "after_250", "poison")


def install(spec: str) -> None:
    """Wrap the outbox's send with the fault ``spec`` describes."""
    point, _, arg = spec.partition(":")
    if point not in POINTS or not arg:
        raise SystemExit(f"fault must be before_smtp:<n>, after_250:<n> or poison:<address>, not {spec!r}")
    original = Outbox.send
    counts = dict.fromkeys(POINTS, 0)

    def reached(name: str) -> None:
        counts[name] += 1
        if name == point and counts[name] == int(arg):
            os.killpg(os.getpgrp(), signal.SIGKILL)

    def send(self: Outbox, email, **options):
        if point == "poison" and email.to == arg:
            os.kill(os.getpid(), signal.SIGKILL)
        reached("before_smtp")
        outcome = original(self, email, **options)
        if outcome.verdict == Verdict.SENT:
            reached("after_250")
        return outcome

    Outbox.send = send  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv.pop(1))
    main()
