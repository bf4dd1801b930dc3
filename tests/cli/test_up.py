"""``papermail up`` runs web, worker and beat on the embedded defaults, and stops on Ctrl-C."""

import contextlib
import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import answers_ok, free_port, settings_environ, subprocess_env, wait_for

# How long `up` may take to stop when nothing is running: its children stop in parallel, and an idle
# worker starts its shutdown at once instead of after its broker polls.
IDLE_STOP_SECONDS = 3.0


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after "(comm)" (state, ppid, …), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


# A process: its pid and its start time (clock ticks after boot), so a reused pid is not mistaken
# for it, and never signalled in its place.
Process = tuple[int, str]


def _descendants(pid: int) -> set[Process]:
    """Every process below ``pid``, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields:
            table[int(entry.name)] = (int(fields[1]), fields[19])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, (parent, _start) in table.items() if parent in frontier} - found
        found |= frontier
    return {(child, table[child][1]) for child in found}


def _alive(process: Process) -> bool:
    fields = _stat(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] != "Z"


def _kill_if_alive(process: Process) -> None:
    if _alive(process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process[0], signal.SIGKILL)


def _stop_for_good(up: subprocess.Popen) -> None:
    """After a failed test: the usual stop, then SIGKILL for `up` and everything it started."""
    if up.poll() is None:
        family = _descendants(up.pid)
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        for process in family:
            _kill_if_alive(process)


def _start_up(
    tmp_path, *unset: str, up_args: tuple[str, ...] = (), **overrides: str
) -> tuple[subprocess.Popen, Path, int]:
    """``papermail up`` on the embedded broker and file outbox, with these settings overridden."""
    environ = settings_environ(tmp_path / "var", **overrides)
    for variable in (*unset, "MAIL_URL") if "mail_url" not in overrides else unset:
        environ.pop(f"PAPERMAIL_{variable}")
    port = free_port()
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "papermail", "up", "--bind", f"127.0.0.1:{port}", *up_args],
            env=subprocess_env(environ),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return up, log_path, port


def _wait_until_running(log_path: Path, port: int) -> None:
    """Wait until web answers /healthz and the worker and beat have logged their start."""
    wait_for(lambda: answers_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, message="web")
    wait_for(lambda: "celery@" in log_path.read_text(), timeout=60, message="the worker")
    wait_for(lambda: "beat: Starting" in log_path.read_text(), timeout=60, message="beat")


def _whole_family(up: subprocess.Popen, log_path: Path, port: int) -> set[Process]:
    """Once everything runs: web (gunicorn + 2 workers), worker (+ 2 pool processes) and beat."""
    _wait_until_running(log_path, port)

    def seven_or_more() -> set[Process] | None:
        found = _descendants(up.pid)
        return found if len(found) >= 7 else None

    return wait_for(seven_or_more, timeout=60, message="every child and grandchild")


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP])
def test_up_stops_every_child_on_sigterm_and_sighup_and_leaves_no_orphan(tmp_path, how):
    up, log_path, port = _start_up(tmp_path, database_url=f"sqlite:///{tmp_path}/up.db")
    try:
        family = _whole_family(up, log_path, port)
        up.send_signal(how)
        assert up.wait(60) == 0
    finally:
        _stop_for_good(up)
    log_text = log_path.read_text()
    assert f"{signal.Signals(how).name} received; stopping web, worker and beat" in log_text
    assert "Traceback" not in log_text, log_text
    # Nobody's pool process was shot: Celery stopped its own.
    assert " ERROR " not in log_text, log_text
    assert [process for process in family if _alive(process)] == []
    assert not answers_ok(f"http://127.0.0.1:{port}/healthz")  # the port is free again


@pytest.mark.slow
def test_children_of_a_killed_up_stop_by_themselves(tmp_path):
    up, log_path, port = _start_up(tmp_path, database_url=f"sqlite:///{tmp_path}/up.db")
    family: set[Process] = set()
    try:
        family = _whole_family(up, log_path, port)
        up.kill()  # SIGKILL: `up` runs no handler; the kernel tells its children (PR_SET_PDEATHSIG)
        up.wait(10)
        wait_for(lambda: not any(_alive(p) for p in family), timeout=60, message="orphans to stop")
    finally:
        for process in family:
            _kill_if_alive(process)
        _stop_for_good(up)


@pytest.mark.slow
def test_up_serves_and_stops_cleanly_without_postgres_or_redis(tmp_path):
    # The embedded defaults: no database, broker, mail or base URL, so SQLite files in the data dir
    # and links to where the web listens.
    up, log_path, port = _start_up(tmp_path, "BASE_URL")
    try:
        _wait_until_running(log_path, port)
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        _stop_for_good(up)
    log_text = log_path.read_text()
    assert "Traceback" not in log_text, log_text
    assert (tmp_path / "var" / "papermail.db").exists()
    assert (tmp_path / "var" / "broker.db").exists()
    assert (
        f"papermail: links in emails http://127.0.0.1:{port}  (from --bind; set PAPERMAIL_BASE_URL to "
        "choose another)\n"
    ) in log_text


@pytest.mark.slow
def test_an_idle_up_stops_within_three_seconds_and_logs_no_error(tmp_path):
    # The embedded default, and --demo so no catch-up is queued: nothing is in flight at the stop.
    up, log_path, port = _start_up(tmp_path, "BASE_URL", up_args=("--demo",))
    try:
        _whole_family(up, log_path, port)
        asked = time.monotonic()
        up.send_signal(signal.SIGTERM)
        exit_code = up.wait(60)
        took = time.monotonic() - asked
    finally:
        _stop_for_good(up)
    log_text = log_path.read_text()
    assert exit_code == 0, log_text
    assert took < IDLE_STOP_SECONDS, f"took {took:.2f}s\n{log_text}"
    assert " ERROR " not in log_text and "Traceback" not in log_text, log_text


@pytest.mark.slow
def test_a_stop_during_a_send_lets_the_batch_finish(tmp_path, smtp_server):
    readers = [f"reader{n}@example.org" for n in range(4)]
    for reader in readers:  # each message takes the relay a second: the stop lands mid-batch
        smtp_server.script(reader, "data:delay:1")
    overrides = {"database_url": f"sqlite:///{tmp_path}/up.db", "mail_url": smtp_server.url}
    environ = subprocess_env(settings_environ(tmp_path / "var", **overrides))

    def papermail(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "papermail", *args]
        return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120, check=True)

    papermail("demo", "load")
    for reader in readers:
        papermail("subscribers", "add", reader, "--confirmed")
    period = papermail("digest", "preview", readers[0]).stdout.split()[0]
    up, log_path, port = _start_up(tmp_path, **overrides)
    try:
        _whole_family(up, log_path, port)
        papermail("digest", "send", "--period", period)
        wait_for(lambda: smtp_server.messages, timeout=60, message="the first message of the batch")
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        _stop_for_good(up)
    assert " ERROR " not in log_path.read_text()
    counts = json.loads(papermail("digest", "status", "--period", period, "--json").stdout)["counts"]
    assert counts["sent"] == len(readers) and sum(counts.values()) == len(readers), counts
    assert smtp_server.count_by_recipient() == dict.fromkeys(readers, 1)


@pytest.mark.slow
def test_up_runs_the_inbound_server_when_its_bind_is_set(tmp_path):
    inbound_port = free_port()
    up, log_path, port = _start_up(
        tmp_path,
        database_url=f"sqlite:///{tmp_path}/up.db",
        bounce_address="bounces@papermail.test",
        inbound_bind=f"127.0.0.1:{inbound_port}",
    )
    try:
        wait_for(lambda: answers_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, message="web")
        wait_for(lambda: "taking bounces" in log_path.read_text(), timeout=60, message="inbound")
        with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as client:
            assert client.ehlo()[0] == 250
            client.mail("")
            assert client.rcpt("someone@example.org")[0] == 550  # never a relay
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        _stop_for_good(up)
    log_text = log_path.read_text()
    assert "SIGTERM received; stopping web, worker, beat and inbound" in log_text
    assert "papermail inbound: stopped" in log_text and "Traceback" not in log_text
