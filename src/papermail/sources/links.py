"""Links in other people's text: which arXiv paper a URL points at, which GitHub repository a paper names."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from papermail.arxiv_ids import parse_arxiv_id

ARXIV_HOSTS = ("arxiv.org", "www.arxiv.org", "export.arxiv.org")
# The pages of a paper: its abstract, its PDF and its HTML rendering, any version.
ARXIV_PAGES = ("abs", "pdf", "html")
# github.com/<owner>/<repo>: owners are letters, digits and hyphens; repositories add "." and "_".
_GITHUB_REPO = re.compile(
    r"github\.com/([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]{1,100})", re.IGNORECASE
)
# github.com/<word>/... paths that are GitHub's own pages, not an owner's repository.
_NOT_OWNERS = frozenset(
    {
        "about",
        "apps",
        "collections",
        "features",
        "login",
        "marketplace",
        "orgs",
        "settings",
        "sponsors",
        "topics",
    }
)


def arxiv_id_in_url(url: object) -> str | None:
    """The version-less arXiv id an abs, pdf or html URL points at (any version); None for other URLs."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if (parts.hostname or "").lower() not in ARXIV_HOSTS:
        return None
    page, _, rest = parts.path.lstrip("/").partition("/")
    if page not in ARXIV_PAGES or not rest:
        return None
    try:
        return parse_arxiv_id(rest.removesuffix(".pdf")).id
    except ValueError:
        return None


def github_url_in(text: object) -> str | None:
    """``https://github.com/owner/repo`` of the first repository URL in ``text``, if any."""
    name = github_repository(text) if isinstance(text, str) else None
    return f"https://github.com/{name}" if name else None


def github_repository(*texts: str | None) -> str | None:
    """``owner/repo`` of the first github.com repository URL in ``texts`` (searched in order)."""
    for text in texts:
        for match in _GITHUB_REPO.finditer(text or ""):
            owner, name = match[1], match[2].rstrip(".").removesuffix(".git")
            if name and owner.lower() not in _NOT_OWNERS:
                return f"{owner}/{name}"
    return None
