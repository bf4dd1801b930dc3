"""``papermail subscribers``: add, list, remove, erase, import and export, each safe to run twice."""

import json

import pytest
import sqlalchemy as sa

from papermail import clock
from papermail.db import audit, session_scope
from papermail.db.bookkeeping import AuditLog, RateLimitHit, SignupRequest
from papermail.db.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus, Suppression
from papermail.redaction import email_hash
from tests.cli.conftest import one_line_error


def test_add_then_confirm_then_nothing_to_change(run, seed):
    added = run("subscribers", "add", "Ada@Example.ORG", "--topics", "cs.LG,cs.CL")
    assert added.exit_code == 0, added.output
    assert "added ada@example.org (pending): topics cs.CL, cs.LG" in added.stdout
    assert "no digest until confirmed" in added.stdout

    confirmed = run("subscribers", "add", "ada@example.org", "--confirmed", "--keywords", "diffusion")
    assert confirmed.exit_code == 0, confirmed.output
    assert "keywords: (none) → diffusion" in confirmed.stdout
    assert "status: pending → active" in confirmed.stdout

    again = run("subscribers", "add", "ada@example.org", "--confirmed", "--keywords", "diffusion")
    assert again.exit_code == 0
    assert "already there (active); nothing changed" in again.stdout

    subscriber = seed.find("ada@example.org")
    assert subscriber.status == SubscriberStatus.ACTIVE and subscriber.confirmed_at is not None
    assert subscriber.keywords == ["diffusion"] and subscriber.topics == ["cs.CL", "cs.LG"]
    assert [row.action for row in seed.audit("subscriber.add") + seed.audit("subscriber.update")] == [
        "subscriber.add",
        "subscriber.update",
    ]


def test_a_new_subscriber_without_topics_follows_the_fetched_categories(run, seed, cli_settings):
    result = run("subscribers", "add", "bo@example.org", "--confirmed")
    assert result.exit_code == 0, result.output
    assert seed.find("bo@example.org").topics == sorted(cli_settings.arxiv_categories)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-address"], "'not-an-address': That doesn't look like an email address"),
        (["x@example.org", "--topics", "cs.NOPE"], "'cs.NOPE' is not an arXiv category"),
        (["x@example.org", "--timezone", "Mars/Olympus"], "Unknown timezone"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, seed, args, message):
    result = run("subscribers", "add", *args)
    assert result.exit_code == 2
    assert one_line_error(result).startswith(message)
    assert seed.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 0


def test_a_suppressed_address_is_never_added_back(run, seed):
    seed.suppress("gone@example.org", "bounce")
    result = run("subscribers", "add", "gone@example.org", "--confirmed")
    assert result.exit_code == 1
    assert one_line_error(result) == (
        "gone@example.org is on the suppression list (bounce); papermail will never mail it again"
    )
    assert seed.find("gone@example.org") is None


def test_list_filters_by_status_and_prints_json(run, seed):
    seed.subscriber("a@example.org")
    seed.subscriber("b@example.org", status=SubscriberStatus.PENDING)
    table = run("subscribers", "list")
    assert table.exit_code == 0
    assert "a@example.org" in table.stdout and "b@example.org" in table.stdout
    assert "2 subscribers" in table.stdout
    listed = json.loads(run("subscribers", "list", "--status", "pending", "--json").stdout)
    assert [row["email"] for row in listed] == ["b@example.org"]
    assert listed[0]["status"] == "pending" and listed[0]["topics"] == ["cs.LG"]
    assert json.loads(run("subscribers", "list", "--status", "bounced", "--json").stdout) == []


def test_remove_unsubscribes_once(run, seed):
    seed.subscriber("a@example.org")
    first = run("subscribers", "remove", "a@example.org", "--reason", "asked by email")
    assert first.exit_code == 0
    assert first.stdout.strip() == "✓ unsubscribed a@example.org"
    second = run("subscribers", "remove", "a@example.org")
    assert second.exit_code == 0
    assert "a@example.org is already unsubscribed; nothing changed" in second.stdout
    assert seed.find("a@example.org").status == SubscriberStatus.UNSUBSCRIBED
    [entry] = seed.audit("subscriber.unsubscribe")
    assert entry.reason == "asked by email" and entry.actor.startswith("cli")


def test_an_unknown_address_is_one_line_and_exit_1(run, seed):
    for args in (["remove", "x@y.org"], ["remove", "x@y.org", "--purge", "--yes"]):
        result = run("subscribers", *args)
        assert result.exit_code == 1
        assert one_line_error(result).startswith("no subscriber x@y.org; see who is there")


def test_purge_erases_everything_but_a_hashed_suppression(run, seed):
    subscriber_id = seed.subscriber("erase.me@example.org")
    seed.subscriber("keep@example.org")
    seed.deliveries(
        "2026-W40", {"erase.me@example.org": DeliveryStatus.SENT, "keep@example.org": DeliveryStatus.SENT}
    )
    seed.deliveries(
        "2026-W41",
        {"erase.me@example.org": DeliveryStatus.FAILED},
        smtp_code=550,
        reply="550 5.1.1 <erase.me@example.org>: mailbox unavailable",
    )
    with session_scope(seed.settings) as session:
        now = clock.now()
        for key in (f"confirm:{email_hash('erase.me@example.org')[:32]}", "signup:ip:192.0.2.1"):
            session.add(RateLimitHit(key=key, at=now))
        for email in ("erase.me@example.org", "keep@example.org"):  # forms not yet processed
            session.add(SignupRequest(email=email, preferences={}, requested_at=now))
        audit.record(
            session,
            "system",
            "subscriber.bounce",
            subscriber_id=subscriber_id,
            reason="550 <erase.me@example.org> unknown",
            to="erase.me@example.org",
        )

    result = run(
        "subscribers", "remove", "erase.me@example.org", "--purge", "--yes", "--reason", "GDPR request"
    )
    assert result.exit_code == 0, result.output
    assert (
        "erased erase.me@example.org: the subscriber, 2 deliveries, and the address in 1 audit rows"
        in result.stdout
    )

    assert seed.find("erase.me@example.org") is None
    assert seed.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 1  # keep@'s
    [suppression] = seed.scalars(sa.select(Suppression))
    assert suppression.email_hash == email_hash("erase.me@example.org") and suppression.reason == "erased"
    audit_text = json.dumps(
        [[row.reason, row.details] for row in seed.scalars(sa.select(AuditLog))], ensure_ascii=False
    )
    assert "erase.me@example.org" not in audit_text
    assert seed.scalars(sa.select(RateLimitHit.key)) == ["signup:ip:192.0.2.1"]
    assert seed.scalars(sa.select(SignupRequest.email)) == ["keep@example.org"]
    [erase] = seed.audit("subscriber.erase")
    assert erase.reason == "GDPR request" and erase.subscriber_id is None

    again = run("subscribers", "remove", "erase.me@example.org", "--purge", "--yes")
    assert again.exit_code == 0
    assert "erase.me@example.org was already erased; nothing to do" in again.stdout
    assert run("subscribers", "remove", "erase.me@example.org").exit_code == 0
    assert run("subscribers", "add", "erase.me@example.org", "--confirmed").exit_code == 1


def test_purge_asks_first(run, seed):
    seed.subscriber("a@example.org")
    result = run("subscribers", "remove", "a@example.org", "--purge", input="n\n")
    assert result.exit_code == 1
    assert seed.find("a@example.org") is not None


IMPORT_CSV = """\
Email,topics,keywords,status
new.one@example.org,cs.LG;cs.CL,,active
new.two@example.org,,transformers,
not-an-address,cs.LG,,
NEW.ONE@example.org,cs.LG,,
bad.topic@example.org,cs.XX,,
opted.out@example.org,cs.LG,,active
suppressed@example.org,,,

left@example.org,cs.RO,"robot learning",unsubscribed
"""


@pytest.fixture
def import_file(tmp_path, seed):
    seed.subscriber("opted.out@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    seed.suppress("suppressed@example.org", "complaint")
    path = tmp_path / "people.csv"
    path.write_text(IMPORT_CSV)
    return path


def _emails(seed) -> set[str]:
    return set(seed.scalars(sa.select(Subscriber.email)))


def test_import_reports_bad_rows_by_line_and_strict_imports_nothing(run, seed, import_file):
    strict = run("subscribers", "import", str(import_file), "--strict")
    assert strict.exit_code == 1
    assert strict.stderr.splitlines() == [
        f"{import_file}:4: That doesn't look like an email address: An email address must have an @-sign.",
        f"{import_file}:5: new.one@example.org is already on line 2",
        f"{import_file}:6: 'cs.XX' is not an arXiv category; the closest are cs.SY, cs.SI, cs.SE. "
        "All of them: `papermail topics` or https://arxiv.org/category_taxonomy",
        f"Error: 3 bad rows in {import_file}; imported nothing (--strict)",
    ]
    assert _emails(seed) == {"opted.out@example.org"}
    dry = run("subscribers", "import", str(import_file), "--dry-run")
    assert dry.exit_code == 0 and "5 good rows, 3 bad; nothing written" in dry.stdout
    assert _emails(seed) == {"opted.out@example.org"}


def test_import_adds_good_rows_keeps_opt_outs_and_is_idempotent(run, seed, import_file):
    first = run("subscribers", "import", str(import_file))
    assert first.exit_code == 1  # some rows were bad: the file needs a look
    assert f"imported {import_file}: 3 added, 0 updated, 1 unchanged" in first.stdout
    assert "kept 1 unsubscribed" in first.stdout and "skipped 1 on the suppression list" in first.stdout
    assert one_line_error_of_last(first) == f"3 bad rows in {import_file} were not imported (listed above)"
    assert _emails(seed) == {
        "new.one@example.org",
        "new.two@example.org",
        "opted.out@example.org",
        "left@example.org",
    }
    people = {s.email: s for s in seed.scalars(sa.select(Subscriber))}
    assert people["new.one@example.org"].status == SubscriberStatus.ACTIVE
    assert people["new.one@example.org"].topics == ["cs.CL", "cs.LG"]
    assert people["new.two@example.org"].status == SubscriberStatus.PENDING
    assert people["new.two@example.org"].keywords == ["transformers"]
    assert people["opted.out@example.org"].status == SubscriberStatus.UNSUBSCRIBED
    assert people["left@example.org"].status == SubscriberStatus.UNSUBSCRIBED
    assert people["left@example.org"].keywords == ["robot learning"]

    second = run("subscribers", "import", str(import_file))
    assert f"imported {import_file}: 0 added, 0 updated, 4 unchanged" in second.stdout
    [*_, last] = seed.audit("subscriber.import")
    assert last.details["added"] == 0 and last.details["unchanged"] == 4


def one_line_error_of_last(result) -> str:
    return result.stderr.strip().splitlines()[-1].removeprefix("Error: ")


def test_import_without_an_email_column_is_one_line(run, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,topics\nAda,cs.LG\n")
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 1
    assert one_line_error(result) == f"{path}: no 'email' column in the header (found: name, topics)"


def test_export_round_trips_through_import(run, seed, tmp_path):
    seed.subscriber("a@example.org", topics=["cs.CV", "cs.LG"], keywords=["large language models", "RLHF"])
    seed.subscriber("b@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    exported = run("subscribers", "export")
    assert exported.exit_code == 0
    lines = exported.stdout.splitlines()
    assert lines[0].startswith("email,status,topics,keywords,frequency")
    assert lines[1].startswith("a@example.org,active,cs.CV;cs.LG,large language models;RLHF,weekly,0,8,UTC,")
    assert exported.stderr.strip() == "exported 2 subscribers"
    path = tmp_path / "export.csv"
    assert run("subscribers", "export", "--status", "active", "-o", str(path)).exit_code == 0
    assert path.read_text().count("\n") == 2
    path.write_text(exported.stdout)
    result = run("subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "0 added, 0 updated, 2 unchanged" in result.stdout


def test_a_long_list_streams_plain_columns(run, seed, monkeypatch):
    monkeypatch.setattr("papermail.cli.subscribers.TABLE_ROW_LIMIT", 1)
    seed.subscriber("a@example.org")
    seed.subscriber("b@example.org", keywords=["graph neural networks"])
    lines = run("subscribers", "list").stdout.splitlines()
    assert lines[0] == "email\tstatus\ttopics\tkeywords\tschedule\tsince"
    assert lines[2].split("\t")[:5] == [
        "b@example.org",
        "active",
        "cs.LG",
        "graph neural networks",
        "weekly, Mon 08:00 UTC",
    ]


FORMULA_ADDRESSES = [
    "=cmd|'/c'!a0@example.org",
    "+33@example.org",
    "-2+3@example.org",
    "'=already.quoted@example.org",
    "'plain.quote@example.org",
]


def test_export_neutralises_formulas_and_import_reads_them_back_unchanged(run, seed, tmp_path):
    for email in FORMULA_ADDRESSES:
        seed.subscriber(email)
    exported = run("subscribers", "export")
    assert exported.exit_code == 0
    cells = [line.split(",")[0].strip('"') for line in exported.stdout.splitlines()[1:]]
    # OWASP: nothing a spreadsheet would evaluate starts a cell.
    assert cells and all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "\n'=cmd|'/c'!a0@example.org," in exported.stdout
    assert "\n''=already.quoted@example.org," in exported.stdout
    path = tmp_path / "export.csv"
    path.write_text(exported.stdout)
    again = run("subscribers", "import", str(path))
    assert again.exit_code == 0, again.output
    assert f"0 added, 0 updated, {len(FORMULA_ADDRESSES)} unchanged" in again.stdout
    with session_scope(seed.settings) as session:
        session.execute(sa.delete(Subscriber))
    restored = run("subscribers", "import", str(path))
    assert restored.exit_code == 0, restored.output
    assert _emails(seed) == set(FORMULA_ADDRESSES)

    # The same cells again, but for the dates (an import records when it added someone).
    def columns(text):
        return sorted(line.rsplit(",", 3)[0] for line in text.splitlines())

    assert columns(run("subscribers", "export").stdout) == columns(exported.stdout)
