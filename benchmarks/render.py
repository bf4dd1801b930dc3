"""Render benchmark: 10-paper digests for many subscribers, all in, against the naive way.

    /work/main/.venv/bin/python benchmarks/render.py [--quick] [--subscribers N]
    /work/main/.venv/bin/python benchmarks/render.py --against /tmp/old-checkout [--rounds 5]

``--against`` compares the fast path side by side with another checkout (``git worktree add
/tmp/old-checkout 4c53e28``): each round runs both trees' benchmark as a fresh process, one after
the other, and the medians of their per-digest medians are compared (target: within 1.1x).

The fast path is what a send worker does for a batch of delivery ids: ``render_deliveries`` (a few
queries for the batch, one Jinja render per part from the template compiled once) and then
``build_message`` for each, giving the MIME bytes handed to SMTP. The baseline does, per subscriber,
what the digest issue calls naive: render the MJML source with Jinja, compile it with mjml2html,
inline the CSS (when css-inline is installed), render the text part, and build an ``EmailMessage``.
The baseline is given its inputs already loaded, so the fast path's database time counts only
against the fast path.

Data: papers with real titles and abstracts (the recorded trending page in the shared fixtures),
a scoring run, and subscribers with varied topics whose deliveries were chosen by
``select_for_subscribers``, on a SQLite database in a temporary directory.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import jinja2
import mjml
import sqlalchemy as sa
from markupsafe import Markup

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from benchmarks.side_by_side import Figure, compare  # noqa: E402
from tests.conftest import make_settings, shared_fixtures_dir  # noqa: E402
from tests.digest.builders import World, seed_texts  # noqa: E402

from papermail import clock, config  # noqa: E402
from papermail.db import migrate  # noqa: E402
from papermail.db.models import Delivery, Digest, Paper, Subscriber, TrendScore  # noqa: E402
from papermail.db.session import session_scope  # noqa: E402
from papermail.digest.cards import paper_card  # noqa: E402
from papermail.digest.links import vote_links  # noqa: E402
from papermail.digest.render import digest_context, render_deliveries  # noqa: E402
from papermail.digest.request import DigestRequest  # noqa: E402
from papermail.digest.select import select_for_subscribers  # noqa: E402
from papermail.mail.message import build_message, make_message_id  # noqa: E402
from papermail.mail.templates import get_templates  # noqa: E402
from papermail.resources import templates_dir  # noqa: E402
from papermail.subscribers.links import CompactTokens, Purpose, link  # noqa: E402

try:
    import css_inline
except ImportError:  # optional: the baseline is then a little faster than the naive way
    css_inline = None

BATCH = 100  # delivery ids per render_deliveries call, like a send worker's batch
TOPIC_SETS = [["cs.LG"], ["cs.CL"], ["cs.CV"], ["cs.LG", "cs.CL"], ["cs.AI", "cs.LG"], ["cs.CV", "cs.RO"]]
INCLUDE = re.compile(r'<mj-include\s+path="([^"]+)"\s*/>')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run for a CI smoke test")
    parser.add_argument("--subscribers", type=int, help="digests for the fast path (default 3000)")
    parser.add_argument("--baseline", type=int, help="digests for the naive baseline (default 200)")
    parser.add_argument("--against", type=Path, help="another checkout to compare the fast path with")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the --against comparison")
    args = parser.parse_args()
    subscribers = args.subscribers or (300 if args.quick else 3000)
    if args.against:
        return compare_with(args.against, subscribers, args.rounds)
    baseline_count = min(subscribers, args.baseline or (30 if args.quick else 200))

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp), database_url=f"sqlite:///{tmp}/bench.db")
        config.use_settings(settings)
        migrate.upgrade(settings)
        delivery_ids = seed(settings, subscribers)
        compile_ms = time_template_compile()
        fast = time_fast_path(settings, delivery_ids)
        naive = time_baseline(settings, delivery_ids[:baseline_count])

    fast_ms, naive_ms = statistics.median(fast["total"]), statistics.median(naive["total"])
    fast_wall, naive_wall = statistics.median(fast["wall"]), statistics.median(naive["wall"])
    ratio = naive_ms / fast_ms
    print(f"render benchmark: {len(delivery_ids)} digests of 10 papers, SQLite, batches of {BATCH}")
    print("  times are CPU ms per digest (process time: steady on a busy machine); wall clock in brackets")
    print(f"  MJML compiled once per process: {compile_ms:.1f} ms")
    print(
        f"  fast path  median {fast_ms:.3f} ms/digest all in [{fast_wall:.3f}] "
        f"(render_deliveries {statistics.median(fast['render']):.3f} + build_message "
        f"{statistics.median(fast['build']):.3f}); worst batch {max(fast['total']):.3f}"
    )
    print(
        f"  naive      median {naive_ms:.3f} ms/digest [{naive_wall:.3f}] over {baseline_count} digests "
        f"(Jinja {statistics.median(naive['jinja']):.3f} + mjml2html {statistics.median(naive['mjml']):.3f}"
        f" + css-inline {statistics.median(naive['inline']):.3f}"
        f"{'' if css_inline else ' (not installed)'} + EmailMessage {statistics.median(naive['email']):.3f})"
    )
    print(f"  speed-up   {ratio:.1f}x CPU, {naive_wall / fast_wall:.1f}x wall clock")
    print(
        f"  sizes      HTML median {statistics.median(fast['html_bytes']) / 1000:.1f} KB, "
        f"message median {statistics.median(fast['message_bytes']) / 1000:.1f} KB "
        f"(naive: HTML {statistics.median(naive['html_bytes']) / 1000:.1f} KB, "
        f"message {statistics.median(naive['message_bytes']) / 1000:.1f} KB)"
    )
    met = fast_ms < 2.0 and ratio >= 10
    print(f"  targets    < 2 ms per digest and >= 10x the baseline: {'met' if met else 'MISSED'}")
    return 0 if met else 1


FAST_PATH = Figure("CPU ms per digest", re.compile(r"fast path\s+median ([\d.]+) ms/digest"), False)
MAX_SLOWDOWN = 1.1


def compare_with(other: Path, subscribers: int, rounds: int) -> int:
    """This tree's fast path against ``other``'s, alternating fresh processes; 0 if within 1.1x."""
    return compare("render.py", ["--subscribers", str(subscribers)], other, rounds, FAST_PATH, MAX_SLOWDOWN)


def seed(settings: config.Settings, subscribers: int) -> list[int]:
    """Papers, one run, subscribers, and their deliveries as the planner would freeze them."""
    texts = seed_texts(shared_fixtures_dir())
    with session_scope(settings) as session:
        world = World(session, texts)
        papers = world.varied_papers(600)
        run = world.run(papers)
        digest = world.digest("2026-W48", run)
        people = [world.subscriber(topics=TOPIC_SETS[n % len(TOPIC_SETS)]) for n in range(subscribers)]
        selections = select_for_subscribers(session, run.id, people, size=settings.digest_size)
        now = clock.now()
        rows = [
            {
                "digest_id": digest.id,
                "subscriber_id": person.id,
                "period_key": digest.period_key,
                "paper_ids": selections[person.id].paper_ids,
                "scheduled_for": now,
                "planned_at": now,
                "updated_at": now,
            }
            for person in people
        ]
        session.execute(Delivery.__table__.insert(), rows)
        return list(session.scalars(sa.select(Delivery.id).order_by(Delivery.id)))


def time_template_compile() -> float:
    templates = get_templates()
    start = time.perf_counter()
    templates.html_template("weekly-digest")
    return (time.perf_counter() - start) * 1000


def time_fast_path(settings: config.Settings, delivery_ids: list[int]) -> dict[str, list[float]]:
    """Per batch: render the batch, build every message; per-digest averages per batch."""
    results: dict[str, list[float]] = {
        k: [] for k in ("render", "build", "total", "wall", "html_bytes", "message_bytes")
    }
    with session_scope(settings) as session:
        render_deliveries(session, settings, delivery_ids[:BATCH])  # warm the connection and caches
        for start in range(0, len(delivery_ids), BATCH):
            batch = delivery_ids[start : start + BATCH]
            session.expunge_all()  # like a worker: each batch loads its rows afresh
            wall, t0 = time.perf_counter(), time.process_time()
            emails = render_deliveries(session, settings, batch)
            t1 = time.process_time()
            now = clock.now()
            messages = [
                build_message(
                    email,
                    mail_from=settings.mail_from,
                    message_id=make_message_id(settings.mail_from),
                    date=now,
                )
                for email in emails.values()
            ]
            t2, wall = time.process_time(), time.perf_counter() - wall
            results["render"].append((t1 - t0) * 1000 / len(batch))
            results["build"].append((t2 - t1) * 1000 / len(batch))
            results["total"].append((t2 - t0) * 1000 / len(batch))
            results["wall"].append(wall * 1000 / len(batch))
            results["html_bytes"] += [len(email.html.encode()) for email in emails.values()]
            results["message_bytes"] += [len(raw) for raw in messages]
    return results


def time_baseline(settings: config.Settings, delivery_ids: list[int]) -> dict[str, list[float]]:
    """Per subscriber: Jinja over the MJML, compile, inline, text, EmailMessage, as_bytes."""
    email_dir = templates_dir() / "email"
    loader = jinja2.FileSystemLoader(str(templates_dir()))
    html_env = jinja2.Environment(loader=loader, autoescape=True)
    text_env = jinja2.Environment(loader=loader, autoescape=False)  # noqa: S701 - plain text
    source = INCLUDE.sub(
        lambda m: (email_dir / m[1]).read_text(), (email_dir / "weekly-digest" / "body.mjml").read_text()
    )
    mjml_template = html_env.from_string(source)
    card_html = html_env.get_template("email/weekly-digest/card.html")
    card_text = text_env.get_template("email/weekly-digest/card.txt")
    inliner = css_inline.CSSInliner() if css_inline else None
    inputs = load_baseline_inputs(settings, delivery_ids)
    results: dict[str, list[float]] = {
        k: [] for k in ("jinja", "mjml", "inline", "email", "total", "wall", "html_bytes", "message_bytes")
    }
    for request, papers in inputs:
        wall, t0 = time.perf_counter(), time.process_time()
        unsubscribe_url = link(settings, Purpose.UNSUBSCRIBE, request.subscriber.id)
        cards = [paper_card(*pair) for pair in papers]
        signer = CompactTokens(settings, Purpose.VOTE)
        links = [vote_links(signer, request.subscriber.id, card.arxiv_id) for card in cards]
        votes = [{"more_url": more, "less_url": less} for more, less in links]
        html_cards = [Markup(card_html.render(p=c, n=n, **votes[n - 1])) for n, c in enumerate(cards, 1)]  # noqa: S704
        text_cards = [card_text.render(p=card, n=n, **votes[n - 1]) for n, card in enumerate(cards, start=1)]
        context = digest_context(request, cards, settings, unsubscribe_url, html_cards, text_cards)
        mjml_source = mjml_template.render(context)
        subject = text_env.get_template("email/weekly-digest/subject.txt").render(context).strip()
        text = text_env.get_template("email/weekly-digest/body.txt").render(context)
        t1 = time.process_time()
        html = mjml.mjml2html(mjml_source, disable_comments=True, fonts={})
        t2 = time.process_time()
        if inliner:
            html = inliner.inline(html)
        t3 = time.process_time()
        message = EmailMessage(policy=policy.SMTP)
        message["Date"] = format_datetime(clock.now())
        message["Message-ID"] = make_message_id(settings.mail_from)
        message["From"] = settings.mail_from
        message["To"] = request.subscriber.email
        message["Subject"] = subject
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        raw = message.as_bytes()
        t4, wall = time.process_time(), time.perf_counter() - wall
        for key, value in (("jinja", t1 - t0), ("mjml", t2 - t1), ("inline", t3 - t2), ("email", t4 - t3)):
            results[key].append(value * 1000)
        results["total"].append((t4 - t0) * 1000)
        results["wall"].append(wall * 1000)
        results["html_bytes"].append(len(html.encode()))
        results["message_bytes"].append(len(raw))
    return results


def load_baseline_inputs(settings: config.Settings, delivery_ids: list[int]):
    """Each delivery's request and its (paper, evidence) pairs, loaded before any timing."""
    with session_scope(settings) as session:
        inputs = []
        for delivery in session.scalars(sa.select(Delivery).where(Delivery.id.in_(delivery_ids))):
            subscriber = session.get(Subscriber, delivery.subscriber_id)
            run_id = session.get(Digest, delivery.digest_id).scoring_run_id
            papers = [
                (session.get(Paper, pid), session.get(TrendScore, (run_id, pid)).evidence)
                for pid in delivery.paper_ids
            ]
            inputs.append(
                (
                    DigestRequest(delivery.id, subscriber, delivery.period_key, delivery.paper_ids, run_id),
                    papers,
                )
            )
        session.expunge_all()
        return inputs


if __name__ == "__main__":
    raise SystemExit(main())
