"""``papermail doctor``: every check against real services, and a one-line reason for each failure."""

import gc
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.db import leases, session_scope
from papermail.db.models import FetchStatus
from tests.cli.conftest import SMTP_PASSWORD
from tests.conftest import free_port, settings_environ
from tests.support.feeds import API_PATH, HF_PATH, RSS_PATH, arxiv_api, serve_file


def _use(settings) -> None:
    """Install ``settings``, with the sources on this test's local stand-in (doctor requests them)."""
    config.use_settings(_on_stand_in(settings))
    reset_celery()


_stand_in: dict[str, str] = {}


def _on_stand_in(settings):
    return replace(
        settings, **{k: v for k, v in _stand_in.items() if getattr(settings, k).startswith("https://")}
    )


@pytest.fixture(autouse=True)
def sources(feed_server, shared_fixtures, cli_settings):
    """Every source answered by a local stand-in: the doctor never leaves this machine."""
    listing = serve_file(shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml")
    feed_server.route(RSS_PATH + "+".join(cli_settings.arxiv_categories), listing)
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    feed_server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    signals = shared_fixtures / "signals"
    feed_server.route(
        "/github/rate_limit", serve_file(signals / "github" / "repo_PyGithub_PyGithub_200.json")
    )
    hn_answer = signals / "hn_algolia" / "search_story_apple_page0.json"
    feed_server.route("/hn/search", serve_file(hn_answer))
    s2_answer = signals / "semantic_scholar" / "paper_get_arxiv_2312.07559_via_doi_200.json"
    feed_server.route("/s2/graph/v1/paper/ARXIV:1706.03762", serve_file(s2_answer))
    _stand_in.update(
        arxiv_rss_url=feed_server.url(RSS_PATH),
        arxiv_api_url=feed_server.url(API_PATH),
        hf_api_url=feed_server.url(HF_PATH),
        github_api_url=feed_server.url("/github"),
        hn_api_url=feed_server.url("/hn"),
        bluesky_api_url=feed_server.url("/bsky"),
        s2_api_url=feed_server.url("/s2"),
    )
    _use(cli_settings)
    yield
    _stand_in.clear()


def _checks(run, *args) -> tuple[int, dict[str, dict]]:
    """The doctor's checks; the worker check only when a test asks for it (it waits for one)."""
    result = run("doctor", "--json", *(args or ("--worker", "0")))
    report = json.loads(result.stdout)
    assert report["ok"] is (result.exit_code == 0)
    return result.exit_code, {check["name"]: check for check in report["checks"]}


def test_a_healthy_development_setup_passes_with_warnings(run, cli_settings, login_smtp_server, sources):
    _use(replace(cli_settings, mail_url=login_smtp_server.url()))
    code, checks = _checks(run)
    assert code == 0
    assert {name: check["status"] for name, check in checks.items()} == {
        "configuration": "ok",
        "database": "ok",
        "migrations": "ok",
        "source arXiv listing": "ok",
        "source arXiv API": "ok",
        "source Hugging Face": "ok",
        "source GitHub": "ok",
        "source Hacker News": "ok",
        "source Bluesky": "ok",
        "source Semantic Scholar": "ok",
        "fetch arxiv": "warn",
        "fetch huggingface": "warn",
        "fetch github": "warn",
        "fetch hackernews": "warn",
        "fetch semanticscholar": "warn",
        "ranking": "warn",
        "beat": "warn",
        "broker": "ok",
        "mail": "ok",
        "base URL": "warn",
        "From domain": "warn",
        "postal address": "ok",
    }
    assert checks["mail"]["detail"].endswith("connected and logged in (nothing sent)")
    assert SMTP_PASSWORD not in checks["mail"]["detail"]
    assert checks["base URL"]["detail"] == (
        "https://papermail.test: papermail.test is not a public domain; set PAPERMAIL_BASE_URL"
    )
    assert checks["fetch arxiv"]["detail"] == "never fetched: run `papermail fetch`"
    assert checks["source Bluesky"]["detail"].startswith("off: set PAPERMAIL_BLUESKY_HANDLE")
    assert checks["ranking"]["detail"].startswith(
        "no papers yet: nothing has been fetched; run `papermail fetch`"
    )
    table = run("doctor", "--worker", "0")
    assert table.exit_code == 0 and "0 failed, 9 warnings, 13 ok" in table.stdout


def test_production_needs_real_addresses_and_smtp(run, cli_settings):
    _use(
        replace(
            cli_settings, env="production", base_url="http://localhost:8000", mail_from="pm <pm@example.com>"
        )
    )
    code, checks = _checks(run)
    assert code == 1
    assert checks["base URL"] == {
        "name": "base URL",
        "status": "fail",
        "detail": "http://localhost:8000: localhost is this machine; set PAPERMAIL_BASE_URL",
    }
    assert checks["From domain"]["detail"].endswith(
        "example.com is a documentation example; set PAPERMAIL_FROM"
    )
    assert checks["mail"]["status"] == "fail"  # memory: delivers to nobody


def test_a_real_production_setup_passes(run, cli_settings, smtp_server, sources, seed):
    _use(
        replace(
            cli_settings,
            env="production",
            base_url="https://papers.university.edu",
            mail_from="papermail <digest@university.edu>",
            mail_url=smtp_server.url,
        )
    )
    seed.fetch_run("arxiv", clock.now() - timedelta(hours=2))
    seed.fetch_run("huggingface", clock.now() - timedelta(minutes=20))
    for source in ("github", "hackernews", "semanticscholar"):
        seed.fetch_run(source, clock.now() - timedelta(hours=1))
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with session_scope(cli_settings) as session:  # a running beat holds the schedule
        leases.acquire(session, leases.BEAT, "host:1:beat", timedelta(minutes=2))
    code, checks = _checks(run)
    assert code == 0, checks
    assert all(check["status"] == "ok" for check in checks.values())


def test_wrong_smtp_password_fails_without_sending(run, cli_settings, login_smtp_server):
    _use(replace(cli_settings, mail_url=login_smtp_server.url(password="wrong")))
    code, checks = _checks(run)
    gc.collect()  # a socket left open by the failed login would raise its ResourceWarning here
    assert code == 1
    assert checks["mail"]["status"] == "fail"
    assert "535" in checks["mail"]["detail"] and "wrong" not in checks["mail"]["detail"]


def test_every_unreachable_service_is_reported_in_one_run(run, cli_settings):
    closed = free_port()
    _use(
        replace(
            cli_settings,
            database_url="postgresql+psycopg://nobody:pw@127.0.0.1:1/none",
            broker_url=f"redis://127.0.0.1:{closed}/0",
            mail_url=f"smtp://127.0.0.1:{closed}",
        )
    )
    code, checks = _checks(run)
    assert code == 1
    assert checks["database"]["status"] == "fail"
    assert checks["database"]["detail"].startswith(
        "database at postgresql+psycopg://nobody:****@127.0.0.1:1/none is not reachable: "
    )
    assert "refused" in checks["database"]["detail"].lower()
    assert "migrations" not in checks
    assert checks["broker"]["status"] == "fail" and "refused" in checks["broker"]["detail"].lower()
    assert checks["mail"]["status"] == "fail" and f"127.0.0.1:{closed}" in checks["mail"]["detail"]
    table = run("doctor", "--worker", "0")
    assert table.exit_code == 1 and "Traceback" not in table.output
    assert "3 failed" in table.stdout  # the database, the broker and the mail; the sources answer


def test_failing_fetches_and_an_unreachable_source_fail_the_doctor(run, cli_settings, sources, seed):
    closed = f"http://127.0.0.1:{free_port()}/api"
    _use(replace(cli_settings, hf_api_url=closed))
    seed.fetch_run(
        "huggingface", clock.now() - timedelta(hours=1), status=FetchStatus.FAILED, problems=["HTTP 503"]
    )
    with session_scope(cli_settings) as session:  # a beat that was killed: its hold ran out
        leases.acquire(session, leases.BEAT, "host:1:beat", timedelta(minutes=-5))
    code, checks = _checks(run)
    assert code == 1
    assert checks["source Hugging Face"]["status"] == "fail"
    assert checks["source Hugging Face"]["detail"].endswith("check the network, or set PAPERMAIL_HF_API_URL")
    assert checks["fetch huggingface"] == {
        "name": "fetch huggingface",
        "status": "fail",
        "detail": "failed 60 min ago: HTTP 503; never succeeded; see `papermail fetch log`",
    }
    assert checks["beat"]["status"] == "fail"
    assert checks["beat"]["detail"].startswith("beat host:1:beat stopped renewing its hold 5 min ago")


def test_an_unmigrated_database_says_what_to_run(run, cli_settings, tmp_path):
    _use(replace(cli_settings, database_url=f"sqlite:///{tmp_path}/empty.db"))
    code, checks = _checks(run)
    assert code == 1
    assert checks["migrations"]["detail"] == "the database is empty: run `papermail db upgrade`"


def test_a_bad_setting_is_a_failed_check(run, cli_settings, tmp_path, monkeypatch):
    for name, value in settings_environ(tmp_path, smtp_timeout="soon").items():
        monkeypatch.setenv(name, value)
    config.use_settings(None)
    code, checks = _checks(run)
    assert code == 1
    assert list(checks) == ["configuration"]
    assert checks["configuration"]["detail"] == "PAPERMAIL_SMTP_TIMEOUT: must be a number, got 'soon'"


def test_no_worker_is_reported_after_the_wait(run, cli_settings):
    code, checks = _checks(run, "--worker", "0.5")
    assert code == 1
    assert checks["worker"]["detail"] == "no worker ran a task within 0.5s (is `papermail worker` running?)"


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_running_worker_is_seen(run, cli_settings, worker_factory, tmp_path):
    worker_factory(settings_environ(tmp_path, database_url=cli_settings.database_url))
    code, checks = _checks(run, "--worker", "60")
    assert code == 0, checks
    assert checks["worker"]["status"] == "ok"


def test_doctor_never_prints_a_password(run, cli_settings):
    password, closed = "Pa55-w0rd", free_port()
    _use(
        replace(
            cli_settings,
            database_url=f"postgresql+psycopg://nobody:{password}@127.0.0.1:{closed}/none",
            broker_url=f"redis://:{password}@127.0.0.1:{closed}/0",
            mail_url=f"smtp+starttls://app:{password}@127.0.0.1:{closed}",
        )
    )
    code, checks = _checks(run)
    assert code == 1
    assert {checks[name]["status"] for name in ("database", "broker", "mail")} == {"fail"}
    assert all(password not in check["detail"] for check in checks.values())
    assert password not in run("doctor").output


def test_ranked_papers_without_a_category_are_counted(run, cli_settings, seed):
    seed.scoring_run([(f"2612.000{n:02}", f"Paper {n}", "12 upvotes") for n in range(1, 21)])
    _code, checks = _checks(run)
    assert checks["categories"] == {
        "name": "categories",
        "status": "ok",
        "detail": "all 20 ranked papers have their arXiv category",
    }
    seed.drop_categories(["2612.00003"])  # one in twenty: the API's usual lag
    assert _checks(run)[1]["categories"]["status"] == "ok"
    seed.drop_categories(["2612.00004", "2612.00005"])
    categories = _checks(run)[1]["categories"]
    assert categories["status"] == "warn"
    assert categories["detail"].startswith(
        "3 of 20 ranked papers have no arXiv category yet: no topic subscriber"
    )
