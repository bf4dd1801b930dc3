"""Rates per period, doctor's thresholds, and the send that pauses itself, on both databases."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from papermail.bounces.imports import import_paths
from papermail.bounces.rates import bounce_checks, period_rates
from papermail.cli import cli
from papermail.db.models import Delivery, Digest, Subscriber
from papermail.delivery.send import send_batch
from tests.support.send_env import plan_week

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


def _dsn(address: str, message_id: str | None, status: str, key: str, *, arf: bool = False) -> str:
    returned = f"Message-ID: {message_id}\nTo: {address}\n" if message_id else f"To: {address}\n"
    if arf:
        part = f"Content-Type: message/feedback-report\n\nFeedback-Type: abuse\nOriginal-Rcpt-To: {address}\n"
        report_type = "feedback-report"
    else:
        part = (
            "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            f"Final-Recipient: rfc822; {address}\nAction: failed\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; 550 {status} refused\n"
        )
        report_type = "delivery-status"
    return (
        f"From: MAILER-DAEMON@mx.example.org\nMessage-ID: <{key}@mx.example.org>\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\n\n'
        f"--b\n{part}\n--b\nContent-Type: text/rfc822-headers\n\n{returned}\n--b--\n"
    )


@pytest.fixture
def sent_week(send_env_factory, backend):
    """``make(n, **settings)``: n subscribers whose 2026-W48 digest went out (memory mail); (env, ids)."""

    def make(count: int, **overrides: str):
        env = send_env_factory(backend, broker="embedded", **overrides)
        ids = plan_week(env, count)
        send_batch(env.settings, ids)
        return env, ids

    return make


def _import(env, tmp_path, reports: dict[str, str]) -> None:
    paths = []
    for name, text in reports.items():
        path = tmp_path / f"{name}.eml"
        path.write_text(text)
        paths.append(path)
    with env.session() as session:
        import_paths(session, env.settings, paths)
        session.commit()


def _message_ids(env) -> dict[str, str]:
    with env.session() as session:
        query = sa.select(Subscriber.email, Delivery.message_id).join(Delivery)
        return dict(session.execute(query).all())


def test_rates_per_period_and_doctor_thresholds(sent_week, tmp_path):
    env, _ids = sent_week(20)
    message_ids = _message_ids(env)
    _import(
        env,
        tmp_path,
        {
            "hard": _dsn("reader1@example.org", message_ids["reader1@example.org"], "5.1.1", "a"),
            "unlinked": _dsn("reader2@example.org", None, "5.1.1", "b"),  # by the last digest sent
            "soft": _dsn("reader3@example.org", None, "4.2.2", "c"),
            "complaint": _dsn("reader4@example.org", None, "", "d", arf=True),
            "blocked": _dsn("reader5@example.org", None, "5.7.1", "e"),
        },
    )
    with env.session() as session:
        (rates,) = period_rates(session, ["2026-W48"])
        checks = {name: (status, detail) for name, status, detail in bounce_checks(session)}
    assert (rates.handed_over, rates.hard, rates.soft, rates.complaints) == (20, 2, 1, 1)
    assert rates.hard_rate == 0.1 and rates.complaint_rate == 0.05
    assert checks["hard bounces"][0] == "fail" and checks["complaints"][0] == "fail"
    assert checks["sender verdicts"][0] == "warn" and "mx.example.org: 1" in checks["sender verdicts"][1]
    stats = json.loads(CliRunner().invoke(cli, ["stats", "--json"], catch_exceptions=False).output)
    assert stats["report_rates"][0] == rates.as_dict()
    doctor = CliRunner().invoke(cli, ["doctor", "--json"])
    assert "hard bounces" in doctor.output


def test_a_send_bouncing_hard_from_the_start_pauses_itself_and_resume_continues(sent_week, tmp_path):
    env, _ids = sent_week(10, bounce_pause_rate="0.01")
    message_ids = _message_ids(env)
    _import(
        env, tmp_path, {"one": _dsn("reader0@example.org", message_ids["reader0@example.org"], "5.1.1", "p")}
    )
    with env.session() as session:
        assert session.scalar(sa.select(Digest.paused_at)) is None  # 1 of at least 100: not yet
    _import(
        env, tmp_path, {"two": _dsn("reader1@example.org", message_ids["reader1@example.org"], "5.1.1", "q")}
    )
    with env.session() as session:
        digest = session.scalar(sa.select(Digest))
        assert digest.paused_at is not None and "hard bounces: 2" in digest.pause_reason
    result = CliRunner().invoke(cli, ["digest", "resume", "--period", "2026-W48"], catch_exceptions=False)
    assert result.exit_code == 0
    with env.session() as session:
        assert session.scalar(sa.select(Digest.paused_at)) is None
