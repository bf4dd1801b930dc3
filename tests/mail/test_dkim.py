"""DKIM signatures that cover the one-click headers, on digests as sent and on a folded header."""

from __future__ import annotations

from papermail.delivery.send import send_batch
from papermail.mail.dkim import DkimSigner
from tests.conftest import dkim_verifies
from tests.support.send_env import planned_week


def signed_headers(message: bytes) -> set[str]:
    signature = message.split(b"\r\n\r\n")[0].decode().replace("\r\n", "").replace(" ", "").replace("\t", "")
    tags = dict(tag.split("=", 1) for tag in signature.split(";") if "=" in tag)
    return set(tags["h"].lower().split(":"))


def test_sent_digests_carry_a_dkim_signature_over_the_unsubscribe_headers(
    send_env_factory, smtp_server, dkim_key
):
    key, record = dkim_key
    env, ids = planned_week(
        send_env_factory,
        smtp_server,
        "sqlite",
        2,
        broker="embedded",
        dkim_key_path=str(key),
        dkim_selector="pm1",
    )
    assert send_batch(env.settings, ids).sent == 2
    for captured in smtp_server.messages:
        assert captured.data.startswith(b"DKIM-Signature: ")
        assert b"d=papermail.test" in captured.data.split(b"\r\n\r\n")[0]
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "message-id"} <= signed_headers(
            captured.data
        )
        assert dkim_verifies(captured.data, record)
        assert not dkim_verifies(captured.data.replace(b"One-Click", b"One-click"), record)


def test_a_folded_list_unsubscribe_header_still_verifies(dkim_key):
    key, record = dkim_key
    url = "https://papermail.example.org/unsubscribe/" + "x" * 180
    message = (
        "From: papermail <digest@papermail.test>\r\nTo: a@example.org\r\nSubject: Week 48\r\n"
        f"List-Unsubscribe: <{url}>,\r\n <mailto:unsubscribe@papermail.test?subject=x>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello\r\n"
    ).encode()
    signed = DkimSigner("pm1", "papermail.test", key.read_bytes()).sign(message)
    assert dkim_verifies(signed, record)
    assert "list-unsubscribe" in signed_headers(signed)
