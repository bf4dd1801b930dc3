"""``papermail digest preview``: exactly what a subscriber gets, written nowhere but where asked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from freezegun import freeze_time

from papermail import config
from papermail.cli import cli
from papermail.db.models import Delivery, Paper, Subscriber
from papermail.db.session import session_scope
from papermail.digest.render import render_deliveries
from tests.conftest import make_settings
from tests.digest.builders import World, parse_message, part_text, same_html


@dataclass
class Planned:
    settings: config.Settings
    delivery_id: int
    papers: list[int]


def invoke(*args: str):
    return CliRunner().invoke(cli, ["digest", "preview", *args])


@pytest.fixture
def planned(database, tmp_path, texts) -> Iterator[Planned]:
    """Committed data in a fresh database (the command opens its own session): a planned week."""
    settings = make_settings(tmp_path, database_url=database.fresh())
    config.use_settings(settings)
    with session_scope(settings) as session:
        world = World(session, texts)
        papers = world.papers(12, categories=["cs.LG"])
        run = world.run(papers)
        reader = world.subscriber("ann@example.org", topics=["cs.LG"])
        world.subscriber("rob@example.org", topics=["cs.RO"])
        delivery = world.delivery(reader, world.digest("2026-W48", run), papers[:10])
        ids = [p.id for p in papers]
    yield Planned(settings, delivery.id, ids)
    config.use_settings(None)


def count(settings, model) -> int:
    with session_scope(settings) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


@freeze_time("2026-11-26 09:00:00")
def test_a_planned_delivery_previews_its_frozen_content(planned, tmp_path):
    with session_scope(planned.settings) as session:
        expected = render_deliveries(session, planned.settings, [planned.delivery_id])[planned.delivery_id]
    printed = invoke("ANN@example.org", "--period", "2026-W48")
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith(
        f"2026-W48 digest for ann@example.org (planned delivery)\nSubject: {expected.subject}\n\n"
    )
    assert printed.output.endswith(expected.text)

    html_file, eml_file = tmp_path / "digest.html", tmp_path / "digest.eml"
    assert invoke("ann@example.org", "--period", "2026-W48", "--out", str(html_file)).exit_code == 0
    assert html_file.read_text() == expected.html
    written = invoke("ann@example.org", "--out", str(eml_file))  # this week is the default period
    assert written.output == f"wrote {eml_file}: the 2026-W48 digest for ann@example.org (planned delivery)\n"
    message = parse_message(eml_file.read_bytes())
    assert message["Subject"] == expected.subject
    assert same_html(part_text(message, "html"), expected.html)
    assert len(message.get_all("List-Unsubscribe")) == 1


def test_an_unplanned_period_is_chosen_now_and_nothing_is_written(planned):
    deliveries, papers = count(planned.settings, Delivery), count(planned.settings, Paper)
    printed = invoke("ann@example.org", "--period", "2026-W49")
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith(
        "2026-W49 digest for ann@example.org (not planned yet; chosen now from run "
    )
    # Ten papers were already planned for this reader in 2026-W48: only the other two remain.
    assert printed.output.count("Abstract: https://arxiv.org/abs/") == 2
    assert (count(planned.settings, Delivery), count(planned.settings, Paper)) == (deliveries, papers)


def test_an_empty_digest_says_why(planned):
    printed = invoke("rob@example.org", "--period", "2026-W48")
    assert printed.exit_code == 0, printed.output
    assert printed.output.strip().endswith(": no new papers in cs.RO this week")


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (
            ["nobody@example.org"],
            1,
            "Error: no subscriber nobody@example.org; see who is there with `papermail subscribers list`, "
            "or add them with `papermail subscribers add nobody@example.org`",
        ),
        (["not an address"], 2, "Invalid value for EMAIL"),
        (["ann@example.org", "--period", "2026-W61"], 2, "period 2026-W61 is not a valid ISO week"),
        (["ann@example.org", "--out", "digest.pdf"], 2, "must end in .html"),
    ],
)
def test_errors_are_one_line_with_meaningful_exit_codes(planned, args, exit_code, message):
    result = invoke(*args)
    assert result.exit_code == exit_code
    assert message in result.output
    assert "Traceback" not in result.output


def test_without_a_scoring_run_there_is_nothing_to_preview(database, tmp_path):
    settings = make_settings(tmp_path, database_url=database.fresh())
    config.use_settings(settings)
    try:
        with session_scope(settings) as session:
            World(session, []).subscriber("ann@example.org")
        result = invoke("ann@example.org")
    finally:
        config.use_settings(None)
    assert result.exit_code == 1
    assert result.output == (
        "Error: nothing to preview: no papers yet: nothing has been fetched; run `papermail fetch` "
        "(or `papermail demo load` to try papermail offline)\n"
    )
    assert count(settings, Subscriber) == 1
