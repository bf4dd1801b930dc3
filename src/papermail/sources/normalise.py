"""Normalisation: clean text, ordered author lists, categories, safe links.

What is stored is plain text, never markup that we later trust. Each source decides whether a field
is HTML or plain text (feedparser's guess is wrong for arXiv: its RSS abstracts are plain text with
math such as ``$x<y$``). HTML goes through :func:`html_to_text`, which decodes entities exactly once;
plain text goes through :func:`normalise_text`, which strips stray tags but decodes nothing. Both end
in :func:`clean_text`. Every function here except ``html_to_text`` is idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from urllib.parse import urlsplit

# -- text -----------------------------------------------------------------------------------------

# Control characters (PostgreSQL refuses NUL in text) and the byte-order mark; whitespace is
# collapsed separately.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1b\x7f-\x84\x86-\x9f\ufeff]")
_WHITESPACE = re.compile(r"\s+")
# Math is left exactly as written: "$O(n)$" is readable, and its backslashes are not accents.
_MATH = re.compile(r"(\$\$.+?\$\$|(?<!\\)\$[^$]+?(?<!\\)\$|\\\(.+?\\\)|\\\[.+?\\\])", re.DOTALL)

_COMBINING = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
    "d": "\u0323",
    "b": "\u0331",
}
_BASE = r"(?:[A-Za-z]|\\[ij](?![A-Za-z]))"
# \'e  \'{e}  {\'e}  \v{s}  \v s  \'{\i}; a letter accent (\v, \c, ...) is a control word, so it
# needs a space or a brace before its letter.
_ACCENT = re.compile(
    r"(?P<open>\{)?\\(?:(?P<sym>['`^\"~=.])|(?P<word>[uvHckrdb])(?![A-Za-z]))\s*"
    rf"(?:\{{\s*(?P<braced>{_BASE})\s*\}}|(?P<bare>{_BASE}))"
    r"(?(open)\})"
)
_LETTERS = {
    "l": "ł",
    "L": "Ł",
    "o": "ø",
    "O": "Ø",
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "i": "\u0131",  # dotless i
    "j": "\u0237",  # dotless j
}
_LETTER_NAMES = "ss|ae|AE|oe|OE|aa|AA|[lLoOij]"
# {\l}  \l{}  \l followed by a space (TeX eats it) or by a non-letter: Przemys{\l}aw, Przemys\l aw.
_LETTER = re.compile(rf"\{{\\({_LETTER_NAMES})\}}|\\({_LETTER_NAMES})(?:\{{\}}|\s+|(?![A-Za-z]))")
_FORMATTING = re.compile(
    r"\\(?:textbf|textit|textsl|textsc|texttt|textrm|textsf|textup|textnormal|emph|underline)"
    r"\s*\{([^{}$]*)\}"
)
_ESCAPED = re.compile(r"\\([&%#_ ])")


def _accent(match: re.Match[str]) -> str:
    base = match.group("braced") or match.group("bare")
    base = base[1] if base.startswith("\\") else base  # \i and \j take accents as i and j
    mark = _COMBINING[match.group("sym") or match.group("word")]
    return unicodedata.normalize("NFC", base + mark)


def _letter(match: re.Match[str]) -> str:
    return _LETTERS[match.group(1) or match.group(2)]


def _tex_outside_math(text: str) -> str:
    if "\\" not in text:
        return text
    pieces = _MATH.split(text)
    for i in range(0, len(pieces), 2):  # even pieces are outside math
        piece = pieces[i]
        if "\\" in piece:
            piece = _ACCENT.sub(_accent, piece)
            piece = _LETTER.sub(_letter, piece)
            piece = _FORMATTING.sub(r"\1", piece)
            pieces[i] = _ESCAPED.sub(r"\1", piece)
    return "".join(pieces)


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _clean_once(text: str) -> str:
    text = _nfc(_CONTROL.sub("", text))
    if "\\" in text:
        text = _nfc(_tex_outside_math(text))
    return _WHITESPACE.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """Plain text as stored: TeX accents as Unicode, lines unwrapped, whitespace collapsed, NFC."""
    # One pass is almost always enough; repeating until nothing changes makes the result a fixed
    # point (nested \textbf{\textbf{x}}, an accent revealed by NFC), so cleaning twice is a no-op.
    # With no backslash left a second pass could only repeat the first, so it is skipped.
    cleaned = _clean_once(text)
    while cleaned != text and "\\" in cleaned:
        text, cleaned = cleaned, _clean_once(cleaned)
    return cleaned


# HTML that can turn up in a plain-text field. Only well-formed tags of real HTML elements count,
# so "$x<y$ and $z>w$" or "<p|H|q>" in an abstract is left alone.
_HTML_ELEMENTS = (
    "a|abbr|b|big|blockquote|body|br|center|cite|code|dd|del|div|dl|dt|em|embed|font|form|h[1-6]|"
    "head|hr|html|i|iframe|img|input|ins|kbd|li|link|meta|object|ol|p|pre|q|s|small|span|strike|"
    "strong|sub|sup|svg|table|tbody|td|th|thead|title|tr|tt|u|ul|var|video|audio|source|math"
)
_ATTRIBUTE = r"""\s+[A-Za-z_:][-\w:.]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_TAG = re.compile(rf"</?(?:{_HTML_ELEMENTS})(?:{_ATTRIBUTE})*\s*/?>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)


def _strip_markup_once(text: str) -> str:
    text = _CONTROL.sub("", text)
    if "<" in text:
        pieces = _MATH.split(text)
        for i in range(0, len(pieces), 2):
            if "<" in pieces[i]:
                pieces[i] = _TAG.sub(" ", _COMMENT.sub(" ", _SCRIPT.sub(" ", pieces[i])))
        text = "".join(pieces)
    return clean_text(text)


def normalise_text(text: str) -> str:
    """Clean a plain-text field: drop any HTML tags and scripts in it, then :func:`clean_text`."""
    cleaned = _strip_markup_once(text)
    # "<<b>b>" reveals a tag once the inner one is gone; without a "<" left there is none to find.
    while cleaned != text and "<" in cleaned:
        text, cleaned = cleaned, _strip_markup_once(cleaned)
    return cleaned


_BOGUS_COMMENT = re.compile(r"<!\[[^>]*>")


class _TextExtractor(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "head", "title", "template", "iframe", "object"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities are decoded here, once
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIPPED:
            self.skipping += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text of an HTML fragment: tags and scripts dropped, entities decoded exactly once, cleaned."""
    extractor = _TextExtractor()
    # HTML has no CDATA outside SVG/MathML: "<![…>" is a bogus comment up to the first ">" (as
    # browsers read it), which Python's parser would otherwise pass through as text.
    extractor.feed(_BOGUS_COMMENT.sub(" ", _CONTROL.sub("", html)))
    extractor.close()
    return clean_text("".join(extractor.parts))


# -- authors --------------------------------------------------------------------------------------

_PARENTHESISED = re.compile(r"\([^()]*\)")
_SEPARATOR = re.compile(r"[,;]")


def clean_author(name: str) -> str:
    """One author's name: affiliations in parentheses dropped, TeX accents decoded, spaces collapsed."""
    while "(" in name:  # innermost first: "(Dept. (CS), MIT)"
        stripped = _PARENTHESISED.sub(" ", name)
        if stripped == name:
            break
        name = stripped
    return normalise_text(name.replace("(", " ").replace(")", " ")).strip(" ,;")


def _top_level_pieces(text: str) -> list[str]:
    """Split at commas and semicolons that are not inside parentheses (affiliations have commas)."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and char in ",;":
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    if depth:  # unbalanced parentheses can't be trusted to hide separators
        return _SEPARATOR.split(text)
    return pieces


def split_authors(text: str) -> list[str]:
    """An ordered list of names from a joined string like ``"A. Smith (MIT, US), B. Jones,  C"``."""
    names = (clean_author(piece) for piece in _top_level_pieces(normalise_text(text)))
    return [name for name in names if name]


def clean_authors(names) -> list[str]:
    """Clean a list of separate names (API and Hugging Face), dropping empty ones, keeping order."""
    cleaned = (clean_author(name) for name in names if isinstance(name, str))
    return [name for name in cleaned if name]


# -- categories and links -------------------------------------------------------------------------

# arXiv's taxonomy: cs.AI, astro-ph, astro-ph.CO, cond-mat.stat-mech, physics.comp-ph, q-bio.NC.
# The API also lists ACM and MSC classes ("I.2.7", "68T05") as categories; those are not topics.
_CATEGORY = re.compile(r"^[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]+(?:-[a-z]+)?)?$")


def normalise_categories(primary: str | None, others) -> tuple[str | None, list[str]]:
    """The primary category (or the first valid one) and all categories, primary first, no repeats."""
    seen: list[str] = []
    for raw in [primary, *others]:
        term = raw.strip() if isinstance(raw, str) else ""
        if _CATEGORY.match(term) and term not in seen:
            seen.append(term)
    return (seen[0] if seen else None), seen


MAX_URL_LENGTH = 300  # Paper.github_url


def safe_http_url(value: object) -> str | None:
    """``value`` if it is an absolute http(s) URL fit to link to, else None (no javascript:, no relative)."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url
