"""Votes from the digest's links and the interests part of the preferences page."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from itsdangerous import TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode

from papermail.db.models import Vote
from papermail.subscribers import links, votes
from tests.support.web import add_papers, csrf_token, preferences_path


def vote_tokens(settings) -> links.CompactTokens:
    return links.CompactTokens(settings, links.Purpose.VOTE)


def vote_path(settings, subscriber_id: int, arxiv_id: str, value: int) -> str:
    """The path of a digest's vote link."""
    return vote_tokens(settings).link(subscriber_id, arxiv_id, value).removeprefix(settings.base_url)


def _votes(session, subscriber_id: int) -> dict[str, tuple[int, str]]:
    session.expire_all()
    rows = session.execute(
        sa.select(Vote.arxiv_id, Vote.value, Vote.source).where(Vote.subscriber_id == subscriber_id)
    )
    return {arxiv_id: (value, source) for arxiv_id, value, source in rows}


def test_a_get_shows_the_paper_and_records_nothing(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    paper = add_papers(session, ["Denoising Diffusion Models Revisited"])[0]
    path = vote_path(web_settings, ada.id, paper.arxiv_id, 1)
    for _ in range(3):  # a link scanner, a preview, the reader
        page = client.get(path)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert "Denoising Diffusion Models Revisited" in body and "More like this" in body
    assert _votes(session, ada.id) == {}


def test_a_post_records_the_vote_and_voting_again_changes_it(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    paper = add_papers(session, ["Denoising Diffusion Models Revisited"])[0]
    more = vote_path(web_settings, ada.id, paper.arxiv_id, 1)
    less = vote_path(web_settings, ada.id, paper.arxiv_id, -1)
    # No CSRF token and no cookie: the signed link is the authority, as with one-click unsubscribe.
    answer = client.post(more)
    assert answer.status_code == 200 and "Noted: more papers like this" in answer.get_data(as_text=True)
    assert _votes(session, ada.id) == {paper.arxiv_id: (1, "digest")}
    client.post(more)
    assert _votes(session, ada.id) == {paper.arxiv_id: (1, "digest")}
    assert "Noted: fewer papers like this" in client.post(less).get_data(as_text=True)
    assert _votes(session, ada.id) == {paper.arxiv_id: (-1, "digest")}


def test_tokens_cannot_be_forged_or_moved(client, web_settings, people, session):
    ada, bob = people.add("ada@example.org"), people.add("bob@example.org")
    first, second = add_papers(session, ["First paper", "Second paper"])
    good = vote_path(web_settings, ada.id, first.arxiv_id, 1)
    token = good.rsplit("/", 1)[1]
    _payload, stamp, signature = token.split(".")
    # Another subscriber's or paper's payload under this signature, a flipped vote, another purpose.
    for other in (
        vote_tokens(web_settings).make(bob.id, first.arxiv_id, 1),
        vote_tokens(web_settings).make(ada.id, second.arxiv_id, 1),
        vote_tokens(web_settings).make(ada.id, first.arxiv_id, -1),
    ):
        forged = f"/vote/{other.split('.')[0]}.{stamp}.{signature}"
        assert client.post(forged).status_code == 400
        assert client.get(forged).status_code == 400
    # Another purpose's token, in either format, is no vote.
    unsubscribe = links.make_token(web_settings, links.Purpose.UNSUBSCRIBE, ada.id)
    assert client.post(f"/vote/{unsubscribe}").status_code == 400
    old_format = links.make_token(web_settings, links.Purpose.VOTE, ada.id, first.arxiv_id, 1)
    assert client.post(f"/vote/{old_format}").status_code == 400
    other_purpose = links.CompactTokens(web_settings, links.Purpose.UNSUBSCRIBE).make(
        ada.id, first.arxiv_id, 1
    )
    assert client.post(f"/vote/{other_purpose}").status_code == 400
    assert client.post(f"/vote/{token[:-2]}xx").status_code == 400
    assert _votes(session, ada.id) == {} and _votes(session, bob.id) == {}


def test_a_vote_for_an_erased_reader_is_an_invalid_link(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    paper = add_papers(session, ["First paper"])[0]
    path = vote_path(web_settings, ada.id, paper.arxiv_id, 1)
    session.delete(ada)
    session.flush()
    assert client.post(path).status_code == 400


def _preferences(client, web_settings, subscriber, **form):
    path = preferences_path(web_settings, subscriber)
    form.setdefault("csrf_token", csrf_token(client, path))
    return client.post(path, data=form)


def test_seeds_by_id_and_url_and_the_mix(client, web_settings, people, session, enqueued):
    ada = people.add("ada@example.org")
    known = add_papers(session, ["A paper papermail has"])[0]
    likes = f"{known.arxiv_id}\nhttps://arxiv.org/abs/2410.05678v2\n  https://arxiv.org/pdf/2409.00001 \n"
    page = _preferences(client, web_settings, ada, form="interests", likes=likes, mix="4")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Saved. Added 3 papers." in body
    assert "A paper papermail has" in body and "(not fetched yet)" in body
    assert _votes(session, ada.id) == {
        known.arxiv_id: (1, "seed"),
        "2410.05678": (1, "seed"),
        "2409.00001": (1, "seed"),
    }
    assert people.get("ada@example.org").relevance_mix == 4
    assert enqueued() == [("papermail.look_up_papers", [["2410.05678", "2409.00001"]])]


def test_bad_seeds_are_refused_with_one_line(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    page = _preferences(
        client, web_settings, ada, form="interests", likes="https://example.org/abs/1", mix="2"
    )
    assert page.status_code == 400 and "is not an arXiv link" in page.get_data(as_text=True)
    many = "\n".join(f"2401.{n:05d}" for n in range(votes.MAX_SEEDS + 1))
    page = _preferences(client, web_settings, ada, form="interests", likes=many, mix="2")
    assert page.status_code == 400 and "At most 50 papers" in page.get_data(as_text=True)
    page = _preferences(client, web_settings, ada, form="interests", likes="", mix="7")
    assert page.status_code == 400 and "from 0 (trending only) to 4" in page.get_data(as_text=True)
    assert _votes(session, ada.id) == {}


def test_a_vote_can_be_removed(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    votes.record_vote(session, ada.id, "2401.00001", votes.LESS, votes.FROM_DIGEST)
    votes.record_vote(session, ada.id, "2401.00002", votes.MORE, votes.FROM_SEED)
    page = _preferences(client, web_settings, ada, form="forget", arxiv_id="2401.00001")
    assert "Forgot 2401.00001." in page.get_data(as_text=True)
    assert _votes(session, ada.id) == {"2401.00002": (1, "seed")}


def test_interest_forms_need_a_csrf_token(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    path = preferences_path(web_settings, ada)
    assert client.post(path, data={"form": "interests", "likes": "2401.00001", "mix": "2"}).status_code == 400
    assert _votes(session, ada.id) == {}


def test_vote_links_survive_a_key_rotation(web_settings):
    before = vote_tokens(web_settings).make(7, "2401.00001", 1)
    rotated = replace(
        web_settings, secret_key="a-new-key-" + "x" * 30, old_secret_keys=(web_settings.secret_key,)
    )
    assert vote_tokens(rotated).read(before) == [7, "2401.00001", 1]
    forgotten = replace(rotated, old_secret_keys=())
    with pytest.raises(links.BadToken):
        vote_tokens(forgotten).read(before)


def plain_signer(*keys: str) -> TimestampSigner:
    """itsdangerous as it comes, with the vote links' salt: what CompactTokens signed with before."""
    return TimestampSigner(list(keys), salt="papermail.compact.vote")


def plain_payload(*values: int | str) -> bytes:
    return base64_encode(json.dumps(list(values), separators=(",", ":")))


@pytest.mark.parametrize(
    "values",
    [(7, "2401.00001", 1), (123456, "hep-th/9901001", -1), (7, 'naïve "quoted" \\ ☃', 1), (7, True, 1.5)],
)
def test_fast_vote_tokens_are_plain_itsdangerous_tokens(web_settings, values):
    fast, plain = vote_tokens(web_settings), plain_signer(web_settings.secret_key)
    with freeze_time("2026-03-02 09:00:00") as frozen:
        assert fast.make(*values) == plain.sign(plain_payload(*values)).decode()
        frozen.tick(timedelta(seconds=3))  # the cached timestamp follows the clock
        token = fast.make(*values)
        assert token == plain.sign(plain_payload(*values)).decode()
        # The fast path's token passes the plain reader, and the plain token the fast reader.
        assert json.loads(base64_decode(plain.unsign(token, max_age=60))) == list(values)
        assert fast.read(plain.sign(plain_payload(*values)).decode()) == list(values)
        frozen.tick(timedelta(days=366))
        with pytest.raises(links.BadToken):
            fast.read(token)


def test_fast_vote_tokens_verify_with_rotated_keys_and_sign_with_the_newest(web_settings):
    old_key, new_key = web_settings.secret_key, "a-new-key-" + "x" * 30
    rotated = replace(web_settings, secret_key=new_key, old_secret_keys=("an-older-key-" + "y" * 30, old_key))
    signed_with_old = plain_signer(old_key).sign(plain_payload(7, "2401.00001", 1)).decode()
    assert vote_tokens(rotated).read(signed_with_old) == [7, "2401.00001", 1]
    fresh = vote_tokens(rotated).make(7, "2401.00001", -1)
    assert json.loads(base64_decode(plain_signer(new_key).unsign(fresh))) == [7, "2401.00001", -1]
    with pytest.raises(links.BadToken):
        vote_tokens(web_settings).read(fresh)  # a server that never had the new key


def test_a_reader_keeps_at_most_500_votes_and_seeds_the_newest(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    path = preferences_path(web_settings, ada)
    token = csrf_token(client, path)
    for box in range(11):  # 550 distinct seeds, 50 at a time
        likes = "\n".join(f"23{box + 1:02d}.{n:05d}" for n in range(votes.MAX_SEEDS))
        page = client.post(path, data={"csrf_token": token, "form": "interests", "likes": likes, "mix": "2"})
        assert page.status_code == 200
    assert "50 older ones were dropped" in page.get_data(as_text=True)
    kept = _votes(session, ada.id)
    assert len(kept) == votes.MAX_VOTES
    assert "2311.00049" in kept and "2301.00049" not in kept  # the oldest box went


def test_preference_posts_are_rate_limited_per_subscriber(client, web_settings, people):
    ada = people.add("ada@example.org")
    path = preferences_path(web_settings, ada)
    token = csrf_token(client, path)
    codes = [
        client.post(
            path, data={"csrf_token": token, "form": "interests", "likes": "", "mix": "2"}
        ).status_code
        for _ in range(31)
    ]
    assert codes == [200] * 30 + [429]
