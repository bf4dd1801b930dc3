"""Gunicorn's server hooks for ``papermail web`` (its ``--config python:papermail.web.server_hooks``)."""

from __future__ import annotations

import gc
from typing import Any


def worker_exit(_arbiter: Any, _worker: Any) -> None:
    """In a worker on its way out: skip the interpreter's collections at exit, as papermail.cli.main does."""
    # They walk every object the app's imports made, which takes about half a second per process,
    # and the master waits for its workers before its own exit; nothing left by then needs collecting.
    gc.freeze()


def on_exit(_arbiter: Any) -> None:
    """In the master, just before it exits: the same."""
    gc.freeze()
