"""Every real bounce in the shared corpus (flufl.bounce's test data, many MTAs) gets the verdict we expect.

The expectations are ours, written by reading each message: (kind, the verdicts of its recipients).
The corpus is read in place, never copied into the repo.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from papermail.bounces.parse import read_report
from tests.conftest import shared_fixtures_dir

CORPUS = shared_fixtures_dir() / "bounces"
SAMPLES = Path(__file__).parent / "samples"

EXPECTED = {
    "aol_01": ("bounce", "sender"),  # "not accepting mail from" our list: a block of us
    "bounce_01": ("unparsed", ""),  # "cannot be delivered to the following address(es):" and none listed
    "bounce_02": ("bounce", "hard"),
    "bounce_03": ("bounce", "hard"),  # not collected for 30 days; "Mailman v2.0.13" is no status code
    "caiwireless_01": ("bounce", "hard"),
    "dsn_01": ("bounce", "hard"),
    "dsn_02": ("bounce", "soft"),
    "dsn_03": ("bounce", "hard"),
    "dsn_04": ("bounce", "hard"),
    "dsn_05": ("bounce", "soft"),
    "dsn_06": ("bounce", "soft"),
    "dsn_07": ("bounce", "soft"),
    "dsn_08": ("bounce", "soft"),
    "dsn_09": ("bounce", "sender"),  # 5.7.1
    "dsn_10": ("bounce", "hard"),
    "dsn_11": ("bounce", "hard"),
    "dsn_12": ("bounce", "hard"),
    "dsn_13": ("bounce", "hard"),
    "dsn_14": ("bounce", "hard"),
    "dsn_15": ("bounce", "hard"),
    "dsn_16": ("bounce", "hard"),
    "dsn_17": ("bounce", "soft"),
    "dsn_18": ("bounce", "hard"),
    "dumbass_01": ("unparsed", ""),  # "Exceeded Maximum Delivery Attempts", naming nobody
    "exim_01": ("bounce", "hard"),
    "groupwise_01": ("bounce", "hard"),
    "groupwise_02": ("bounce", "hard"),
    "groupwise_03": ("not-a-report", ""),  # a person's reply, not a bounce
    "hotpop_01": ("bounce", "hard"),
    "llnl_01": ("bounce", "hard"),
    "microsoft_01": ("bounce", "hard"),
    "microsoft_02": ("bounce", "hard"),  # "Unknown Recipient"; the quoted Subject's "Virus" doesn't count
    "microsoft_03": ("bounce", "hard"),
    "microsoft_04": ("bounce", "hard"),
    "netscape_01": ("bounce", "hard"),
    "newmailru_01": ("bounce", "hard"),
    "postfix_01": ("bounce", "hard"),
    "postfix_02": ("bounce", "hard"),
    "postfix_03": ("bounce", "hard"),
    "postfix_04": ("bounce", "soft"),
    "postfix_05": ("bounce", "hard"),
    "qmail_01": ("bounce", "hard"),
    "qmail_02": ("bounce", "hard"),
    "qmail_03": ("bounce", "hard"),
    "qmail_04": ("bounce", "hard"),
    "qmail_05": ("bounce", "hard"),
    "qmail_06": ("bounce", "soft"),
    "qmail_07": ("bounce", "hard"),
    "qmail_08": ("auto-reply", ""),  # Precedence: auto_reply, in a charset Python doesn't know
    "sendmail_01": ("bounce", "hard"),
    "simple_01": ("bounce", "hard"),
    "simple_02": ("bounce", "hard"),
    "simple_03": ("bounce", "soft"),
    "simple_04": ("bounce", "hard"),
    "simple_05": ("bounce", "hard"),
    "simple_06": ("bounce", "hard"),
    "simple_07": ("bounce", "soft"),
    "simple_08": ("bounce", "hard"),
    "simple_09": ("bounce", "soft"),
    "simple_10": ("bounce", "hard"),
    "simple_11": ("bounce", "hard"),  # Lotus Notes: "not listed in Domino Directory"
    "simple_12": ("bounce", "hard"),
    "simple_13": ("bounce", "hard"),
    "simple_14": ("bounce", "soft"),  # "552 Quota violation"
    "simple_15": ("bounce", "hard"),
    "simple_16": ("bounce", "hard"),
    "simple_17": ("bounce", "hard"),
    "simple_18": ("bounce", "hard"),
    "simple_19": ("bounce", "hard"),
    "simple_20": ("bounce", "hard"),
    "simple_21": ("bounce", "soft"),
    "simple_22": ("bounce", "soft"),
    "simple_23": ("bounce", "hard"),
    "simple_24": ("bounce", "hard"),
    "simple_25": ("bounce", "hard"),
    "simple_26": ("bounce", "hard"),
    "simple_27": ("bounce", "hard"),
    "simple_28": ("bounce", "soft"),
    "simple_29": ("bounce", "hard"),
    "simple_30": ("bounce", "hard"),
    "simple_31": ("bounce", "hard"),
    "simple_32": ("bounce", "hard"),
    "simple_33": ("bounce", "hard"),
    "simple_34": ("bounce", "hard"),
    "simple_35": ("bounce", "soft"),
    "simple_36": ("bounce", "hard"),
    "simple_37": ("bounce", "hard"),
    "simple_38": ("bounce", "soft"),
    "simple_39": ("bounce", "hard"),
    "simple_40": ("bounce", "soft"),
    "simple_41": ("bounce", "hard"),
    "simple_42": ("bounce", "sender"),  # Gmail 5.7.1 "likely unsolicited mail"
    "simple_43": ("unparsed", ""),
    "simple_44": ("bounce", "soft"),
    "simple_45": ("bounce", "soft"),
    "sina_01": ("bounce", "hard"),
    "smtp32_01": ("bounce", "hard"),
    "smtp32_02": ("bounce", "hard"),
    "smtp32_03": ("bounce", "hard"),
    "smtp32_04": ("bounce", "hard"),
    "smtp32_05": ("bounce", "hard"),
    "smtp32_06": ("bounce", "hard"),
    "smtp32_07": ("bounce", "hard"),
    "yahoo_01": ("bounce", "soft"),
    "yahoo_02": ("bounce", "soft"),
    "yahoo_03": ("bounce", "hard"),
    "yahoo_04": ("bounce", "soft"),
    "yahoo_05": ("bounce", "hard"),
    "yahoo_06": ("bounce", "hard"),
    "yahoo_07": ("bounce", "hard"),
    "yahoo_08": ("bounce", "hard"),
    "yahoo_09": ("bounce", "hard"),
    "yahoo_10": ("bounce", "hard"),
    "yahoo_11": ("bounce", "hard"),
    "yahoo_12": ("bounce", "hard"),
    "yahoo_13": ("bounce", "hard"),
    "yale_01": ("bounce", "hard"),
}

# Our own samples: ARF complaints, successes, auto-replies, and input built to break parsers.
EXPECTED_SAMPLES = {
    "arf_abuse": ("complaint", "complaint"),
    "arf_redacted": ("complaint", "complaint"),
    "auto_reply": ("auto-reply", ""),
    "success_dsn": ("delivery-report", "none"),
    "blocked_dsn": ("bounce", "sender"),
    "mailbox_full_dsn": ("bounce", "soft"),
    "broken_mime": ("unparsed", ""),
    "bad_charset": ("unparsed", ""),  # the address itself is broken UTF-8: nobody to act on
    "empty": ("unparsed", ""),
    "nested_report": ("bounce", "hard"),
    "bounce_of_a_bounce": ("bounce", "hard"),
}


def _verdicts(raw: bytes) -> tuple[str, str]:
    report = read_report(raw)
    return report.kind.value, "/".join(sorted({r.verdict.value for r in report.recipients}))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_message_gets_the_expected_verdict(name):
    assert _verdicts((CORPUS / f"{name}.txt").read_bytes()) == EXPECTED[name]


def test_the_table_covers_the_whole_corpus():
    assert {path.stem for path in CORPUS.glob("*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED_SAMPLES))
def test_each_sample_gets_the_expected_verdict(name):
    assert _verdicts((SAMPLES / f"{name}.eml").read_bytes()) == EXPECTED_SAMPLES[name]


def test_the_corpus_verdict_table():
    counts = Counter(verdict or kind for kind, verdict in EXPECTED.values())
    assert counts == {"hard": 86, "soft": 23, "sender": 3, "unparsed": 3, "not-a-report": 1, "auto-reply": 1}


def test_a_bounce_of_a_bounce_names_only_the_outer_failed_recipient():
    report = read_report((SAMPLES / "bounce_of_a_bounce.eml").read_bytes())
    assert [r.address for r in report.recipients] == ["mailer-daemon@other.example.net"]


def test_a_version_number_is_not_a_status_code():
    report = read_report((CORPUS / "bounce_03.txt").read_bytes())
    assert [r.status for r in report.recipients] == [None]


def test_garbage_never_raises():
    for raw in (b"\x00" * 100, b"Content-Type: multipart/report\r\n\r\n--", b"\xff" * 5000, b":\r\n\r\n"):
        assert read_report(raw).kind.value in ("unparsed", "not-a-report")


def test_the_returned_message_id_is_found_whether_or_not_the_report_has_its_own():
    returned = "--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <ours@papermail.test>\n\n--b--\n"
    head = 'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
    for own in ("Message-ID: <report@mx.example.org>\n", ""):
        report = read_report((own + head + returned).encode())
        assert report.original_message_ids == ("<ours@papermail.test>",)
