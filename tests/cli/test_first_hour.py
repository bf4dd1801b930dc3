"""What a newcomer's first hour with the command line trips over: periods, wording, resume, add."""

from __future__ import annotations

import json

import click
import sqlalchemy as sa
from freezegun import freeze_time

from papermail.cli import cli
from papermail.db.models import DeliveryStatus, Subscriber

PERIOD = "2026-W49"


def _period_helps(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _period_helps(command, (*path, name))
        for param in command.params:
            if "--period" in getattr(param, "opts", ()):
                yield (*path, name), param.help


def test_every_period_option_names_its_default_precisely():
    helps = dict(_period_helps(cli))
    assert {("digest", "preview"), ("digest", "status"), ("digest", "resume"), ("resend",)} <= set(helps)
    for path, text in helps.items():
        default = text.partition("Default: ")[2]
        assert default and default != "the latest.", path
        assert "planned period" in default or "due now" in default, (path, default)


def test_preview_defaults_to_the_period_planned_last_and_names_it_first(run, seed):
    seed.subscriber("ann@example.org")
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with freeze_time("2026-12-05 12:00:00"):  # Saturday of 2026-W49
        assert run("digest", "plan", "--period", "2026-W48").exit_code == 0
        shown = run("digest", "preview", "ann@example.org")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == "2026-W48 digest for ann@example.org (planned delivery)"
    as_json = json.loads(run("digest", "preview", "ann@example.org", "--json").stdout)
    assert as_json["period_key"] == "2026-W48" and as_json["planned"] is True
    assert as_json["subject"].startswith("Week 48, 2026: ")


def test_resume_with_nothing_paused_says_so_and_queues_nothing(run, seed):
    seed.subscriber("ann@example.org")
    seed.deliveries(PERIOD, {"ann@example.org": DeliveryStatus.PENDING})
    result = run("digest", "resume")
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"· nothing to resume: {PERIOD} is not paused (the circuit breaker pauses a period)\n"
    )
    as_json = json.loads(run("digest", "resume", "--json").stdout)
    assert as_json == {"period_key": PERIOD, "resumed": False, "queued": 0}
    unknown = run("digest", "resume", "--period", "2026-W01", "--json")
    assert unknown.exit_code == 1 and json.loads(unknown.stderr) == {
        "error": "no digest planned for period 2026-W01; see: papermail digest status"
    }


def test_status_json_before_any_digest_is_json(run, seed):
    result = run("digest", "status", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "period_key": None,
        "counts": {},
        "note": "no digest has been planned yet",
    }


def test_add_takes_the_web_forms_schedule_and_says_it_in_words(run, seed):
    added = run(
        "subscribers", "add", "ann@example.org", "--confirmed", "--frequency", "daily",
        "--hour", "7", "--timezone", "Europe/Berlin",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.endswith("keywords none; daily at 07:00 Europe/Berlin\n")
    weekly = run("subscribers", "add", "bob@example.org", "--day", "Fri", "--hour", "18", "--json")
    assert json.loads(weekly.stdout)["schedule"] == "weekly, Fri 18:00 UTC"
    stored = seed.scalar(sa.select(Subscriber).where(Subscriber.email == "bob@example.org"))
    assert (stored.send_weekday, stored.send_hour) == (4, 18)
    bad = run("subscribers", "add", "bob@example.org", "--hour", "24")
    assert bad.exit_code == 2 and "24 is not in the range 0<=x<=23" in bad.stderr


def test_a_mix_change_is_one_truthful_line(run, seed):
    assert run("subscribers", "add", "ann@example.org", "--confirmed").exit_code == 0
    changed = run("subscribers", "add", "ann@example.org", "--mix", "0")
    assert changed.stdout == "✓ updated ann@example.org: relevance mix 2 → 0\n"
    same = run("subscribers", "add", "ann@example.org", "--mix", "0")
    assert same.stdout == "· ann@example.org is already there (active); nothing changed\n"


def test_counts_of_one_read_in_the_singular(run, seed):
    seed.subscriber("ann@example.org")
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with freeze_time("2026-12-05 12:00:00"):
        planned = run("digest", "plan", "--period", PERIOD)
    assert planned.stdout.startswith(f"✓ planned 1 new delivery ({PERIOD}); nothing sent yet")
    assert run("subscribers", "list").stdout.splitlines()[-1].strip() == "1 subscriber"
    exported = run("subscribers", "export")
    assert exported.stderr == "exported 1 subscriber\n"


def test_export_help_names_its_file_one_way(run):
    text = run("subscribers", "export", "--help").stdout
    assert " ".join(text.split()).count("-o, --out FILE Write the CSV to FILE instead of stdout.") == 1
    assert "FILENAME" not in text and "--output" not in text
