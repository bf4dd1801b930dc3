"""Stand-ins for GitHub, Hacker News (Algolia), Bluesky and Semantic Scholar, served by FeedServer.

Each answers in the shape of the recorded real responses in ``../shared/fixtures/signals`` (read in
place): a recorded object is loaded and only the fields a test sets are replaced. The state (stars,
stories, posts, citations) is plain data a test changes as its frozen clock moves, and ``fail_next``
scripts the next answers (a 403, a 429, a 503, a malformed body) before normal service resumes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache

from tests.conftest import shared_fixtures_dir
from tests.support.feeds import FeedServer, Reply, Request

GITHUB_PATH, HN_PATH = "/github", "/hn/api/v1"
BLUESKY_PATH, S2_PATH = "/bsky/xrpc", "/s2"
SEARCH_POSTS = f"{BLUESKY_PATH}/app.bsky.feed.searchPosts"
CREATE_SESSION = f"{BLUESKY_PATH}/com.atproto.server.createSession"
PAPER_BATCH = f"{S2_PATH}/graph/v1/paper/batch"
HN_SEARCH = f"{HN_PATH}/search_by_date"
# The stand-ins page in small pages whatever the client asks, so every test pages.
PAGE_SIZE = 3
JSON_TYPE = {"Content-Type": "application/json"}
ACCESS_TOKEN = "stand-in-access-jwt"


def recorded(relative: str) -> bytes:
    """A recorded response body from ``signals/``."""
    return (shared_fixtures_dir() / "signals" / relative).read_bytes()


@cache
def _recorded_json(relative: str):
    return json.loads(recorded(relative))


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Scripted:
    """Answers to give before the normal ones (each used once), for failure tests."""

    fail_next: list[Reply | None] = field(default_factory=list)  # None: answer normally

    def scripted(self) -> Reply | None:
        return self.fail_next.pop(0) if self.fail_next else None


def github_rate_limited(_request: Request | None = None) -> Reply:
    """GitHub's recorded anonymous rate-limit answer: 403, no requests left."""
    body = recorded("github/rate_limit_403_unauthenticated.json")
    return Reply(403, body, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"})


def malformed() -> Reply:
    return Reply(200, b"<html>an error page, not JSON</html>", {"Content-Type": "text/html"})


@dataclass
class GitHub(Scripted):
    """``GET /repos/{owner}/{repo}``: stars per repository, ETags, 404 for unknown ones."""

    stars: dict[str, int] = field(default_factory=dict)

    def install(self, server: FeedServer) -> None:
        server.route_prefix(f"{GITHUB_PATH}/repos/", self)

    def __call__(self, request: Request) -> Reply:
        if reply := self.scripted():
            return reply
        name = request.path.removeprefix(f"{GITHUB_PATH}/repos/")
        if name not in self.stars:
            return Reply(
                404, recorded("github/repo_not_found_404.json"), {"Content-Type": "application/json"}
            )
        etag = f'W/"{name}-{self.stars[name]}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        repo = copy.deepcopy(_recorded_json("github/repo_PyGithub_PyGithub_200.json"))
        repo.update(full_name=name, name=name.split("/")[1], stargazers_count=self.stars[name])
        repo["watchers_count"] = self.stars[name]
        return _json(repo, headers={"ETag": etag, "X-RateLimit-Remaining": "59"})


@dataclass
class Story:
    url: str
    points: int
    comments: int
    created_at: int  # Unix seconds
    story_id: int


@dataclass
class HackerNews(Scripted):
    """``search_by_date``: the stories whose URL mentions arxiv.org, newest first, paged."""

    stories: list[Story] = field(default_factory=list)

    def install(self, server: FeedServer) -> None:
        server.route(HN_SEARCH, self)

    def __call__(self, request: Request) -> Reply:
        if reply := self.scripted():
            return reply
        since = int(request.query["numericFilters"].removeprefix("created_at_i>"))
        assert request.query["restrictSearchableAttributes"] == "url" and request.query["tags"] == "story"
        found = sorted(
            (s for s in self.stories if s.created_at > since and "arxiv.org" in s.url),
            key=lambda s: -s.created_at,
        )
        size = min(int(request.query.get("hitsPerPage", 20)), PAGE_SIZE)
        page = int(request.query.get("page", 0))
        answer = copy.deepcopy(_recorded_json("hn_algolia/search_by_date_story_apple_page0.json"))
        template = answer["hits"][0]
        answer["hits"] = [self._hit(template, s) for s in found[page * size : (page + 1) * size]]
        answer.update(nbHits=len(found), page=page, nbPages=-(-len(found) // size), hitsPerPage=size)
        return _json(answer)

    @staticmethod
    def _hit(template: dict, story: Story) -> dict:
        hit = copy.deepcopy(template)
        hit.update(
            url=story.url,
            points=story.points,
            num_comments=story.comments,
            created_at_i=story.created_at,
            objectID=str(story.story_id),
        )
        return hit


@dataclass
class Post:
    link: str
    likes: int
    reposts: int = 0
    quotes: int = 0
    in_text: bool = False  # the link is in the text's facets rather than a link card


@dataclass
class Bluesky(Scripted):
    """``createSession`` and ``searchPosts`` (auth required), paged by cursor."""

    posts: list[Post] = field(default_factory=list)
    password: str = "app-password"

    def install(self, server: FeedServer) -> None:
        server.route(CREATE_SESSION, self.create_session)
        server.route(SEARCH_POSTS, self)

    def create_session(self, request: Request) -> Reply:
        if json.loads(request.body).get("password") != self.password:
            return _json(
                {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, 401
            )
        return _json({"accessJwt": ACCESS_TOKEN, "refreshJwt": "r", "handle": "reader.bsky.social"})

    def __call__(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return _json({"error": "AuthMissing", "message": "Authentication Required"}, 403)
        if reply := self.scripted():
            return reply
        start = int(request.query.get("cursor") or 0)
        size = min(int(request.query.get("limit", 25)), PAGE_SIZE)
        chosen = self.posts[start : start + size]
        answer = {"posts": [self._post(post) for post in chosen]}
        if start + size < len(self.posts):
            answer["cursor"] = str(start + size)
        return _json(answer)

    @staticmethod
    def _post(post: Post) -> dict:
        recorded_posts = _recorded_json("bluesky/searchPosts_redistricting_2025.json")["posts"]
        with_card = next(
            p for p in recorded_posts if p.get("embed", {}).get("$type", "").endswith("external#view")
        )
        shaped = copy.deepcopy(recorded_posts[0] if post.in_text else with_card)
        if post.in_text:
            shaped["record"]["facets"][0]["features"][0]["uri"] = post.link
        else:
            shaped["embed"]["external"]["uri"] = post.link
            shaped["record"].pop("facets", None)
        shaped.update(likeCount=post.likes, repostCount=post.reposts, quoteCount=post.quotes)
        return shaped


@dataclass
class SemanticScholar(Scripted):
    """``POST /graph/v1/paper/batch``: a list in the order asked, ``null`` for unknown papers."""

    citations: dict[str, int] = field(default_factory=dict)
    tldrs: dict[str, str] = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)

    def install(self, server: FeedServer) -> None:
        server.route(PAPER_BATCH, self)

    def __call__(self, request: Request) -> Reply:
        if reply := self.scripted():
            return reply
        ids = json.loads(request.body)["ids"]
        self.batch_sizes.append(len(ids))
        if len(ids) > 500:
            return _json({"error": "Cannot process more than 500 ids"}, 400)
        template = _recorded_json("semantic_scholar/paper_batch_with_null_200.json")[1]
        answer = []
        for wanted in ids:
            arxiv_id = wanted.removeprefix("ARXIV:")
            if arxiv_id not in self.citations:
                answer.append(None)
                continue
            paper = copy.deepcopy(template)
            paper["externalIds"]["ArXiv"] = arxiv_id
            paper.update(
                citationCount=self.citations[arxiv_id], influentialCitationCount=self.citations[arxiv_id] // 4
            )
            paper["tldr"] = (
                {"model": "tldr@v2.0.0", "text": self.tldrs[arxiv_id]} if arxiv_id in self.tldrs else None
            )
            answer.append(paper)
        return _json(answer)


def s2_rate_limited(_request: Request | None = None) -> Reply:
    return Reply(
        429,
        recorded("semantic_scholar/rate_limit_429.json"),
        {"x-amzn-ErrorType": "TooManyRequestsException"},
    )


@dataclass
class SignalApis:
    """All four stand-ins on one server."""

    server: FeedServer
    github: GitHub = field(default_factory=GitHub)
    hn: HackerNews = field(default_factory=HackerNews)
    bluesky: Bluesky = field(default_factory=Bluesky)
    s2: SemanticScholar = field(default_factory=SemanticScholar)

    def __post_init__(self) -> None:
        for api in (self.github, self.hn, self.bluesky, self.s2):
            api.install(self.server)

    def settings_overrides(self) -> dict[str, object]:
        """The settings that point papermail at the stand-ins, Bluesky configured."""
        return {
            "github_api_url": self.server.url(GITHUB_PATH),
            "hn_api_url": self.server.url(HN_PATH),
            "bluesky_api_url": self.server.url(BLUESKY_PATH),
            "bluesky_handle": "reader.bsky.social",
            "bluesky_app_password": self.bluesky.password,
            "s2_api_url": self.server.url(S2_PATH),
        }
