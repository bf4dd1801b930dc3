"""A second ``papermail beat`` for the same database refuses to start; a killed one's hold runs out."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import settings_environ, subprocess_env, wait_for

LEASE_SECONDS = "8"


class Beat:
    """A real ``papermail beat`` subprocess, its output in a file."""

    def __init__(self, environ: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "papermail", "beat"],
                env=subprocess_env(environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started_or_refused(self) -> str | None:
        if "beat: Starting" in self.log():
            return "started"
        return "refused" if self.process.poll() is not None else None

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, how)
            self.process.wait(30)


@pytest.fixture
def beats(database, tmp_path):
    """``beats()`` starts another beat against one fresh database (and one embedded broker)."""
    environ = settings_environ(
        tmp_path / "var", database_url=database.fresh(), beat_lease_seconds=LEASE_SECONDS
    )
    started: list[Beat] = []

    def start() -> Beat:
        beat = Beat(environ, tmp_path / f"beat-{len(started)}.log")
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.stop(signal.SIGKILL)


def _outcome(beat: Beat) -> str:
    return wait_for(beat.started_or_refused, timeout=60, message=f"beat to start or refuse ({beat.log_path})")


@pytest.mark.slow
def test_a_second_beat_refuses_with_one_line_and_exit_1(beats):
    first = beats()
    assert _outcome(first) == "started"
    second = beats()
    assert _outcome(second) == "refused"
    assert second.process.returncode == 1
    lines = second.log().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: another beat (") and "holds the schedule for this database" in lines[0]
    # A clean stop hands the schedule over at once.
    first.stop()
    assert first.process.returncode == 0
    assert _outcome(beats()) == "started"


@pytest.mark.slow
def test_a_killed_beats_hold_runs_out_by_itself(beats):
    first = beats()
    assert _outcome(first) == "started"
    first.stop(signal.SIGKILL)
    # Killed, it released nothing: its hold stands until it runs out...
    assert _outcome(beats()) == "refused"

    def next_beat_starts() -> bool:
        return _outcome(beats()) == "started"

    # ...and then it does, with nobody cleaning up.
    wait_for(next_beat_starts, timeout=60, interval=0.5, message="the killed beat's hold to run out")
