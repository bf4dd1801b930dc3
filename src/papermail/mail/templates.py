"""Email templates: MJML compiled once into Jinja templates, plus text and subject templates.

Layout on disk (``templates/email/``)::

    _base/head.mjml, _base/header.mjml, _base/footer.mjml, _base/footer.txt   shared partials
    <email-name>/subject.txt   one line
    <email-name>/body.txt      the plain-text part
    <email-name>/body.mjml     the HTML part, with <mj-include path="_base/…"/> for the partials

``body.mjml`` is compiled by mjml-python the first time an email is rendered in a process; the
result still contains the Jinja tags and is kept as a Jinja template, so rendering a digest for a
subscriber costs one Jinja render, not an MJML compile. Jinja tags must survive MJML (checked by
``tests/mail/test_templates.py``): no ``<`` inside a Jinja tag, no Jinja inside a tag's
attribute list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import mjml
from markupsafe import Markup, escape

from papermail.resources import templates_dir

BASE_DIR_NAME = "_base"


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of an email."""

    subject: str
    text: str
    html: str


class TemplateError(Exception):
    """An email template is missing or doesn't compile."""


class EmailTemplates:
    """Renders the emails under ``<root>/email``; create one per process (see :func:`get_templates`)."""

    def __init__(self, root: Path) -> None:
        self.email_dir = root / "email"
        loader = jinja2.FileSystemLoader(str(root))
        # Text and subjects are plain text: autoescaping them would show "&amp;" to readers.
        self._text_env = jinja2.Environment(
            loader=loader,
            autoescape=False,  # noqa: S701 - plain text, never HTML
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            # Templates are files shipped with the code: don't stat them again on every render.
            auto_reload=False,
        )
        self._html_env = jinja2.Environment(
            autoescape=True, undefined=jinja2.StrictUndefined, finalize=ascii_html
        )
        self._html: dict[str, jinja2.Template] = {}

    def names(self) -> list[str]:
        """Every email kind that has templates."""
        return sorted(p.name for p in self.email_dir.iterdir() if p.is_dir() and p.name != BASE_DIR_NAME)

    def compile_mjml(self, name: str) -> str:
        """The HTML (still holding Jinja tags) compiled from ``<name>/body.mjml``."""
        source = self.email_dir / name / "body.mjml"
        if not source.is_file():
            raise TemplateError(f"no template {source}")
        try:
            # fonts={}: no web-font import. MRML otherwise links Google Fonts for "Roboto" in our
            # font stack: a request to a third party from every reader's mail client.
            return mjml.mjml2html(
                source.read_text(), disable_comments=True, fonts={}, include_loader=self._include
            )
        except Exception as exc:  # mjml raises its own error type from Rust
            raise TemplateError(f"{source}: {exc}") from exc

    def _include(self, path: str) -> str:
        target = (self.email_dir / path).resolve()
        if not target.is_relative_to(self.email_dir.resolve()):
            raise TemplateError(f"include outside the email templates: {path}")
        return target.read_text()

    def html_template(self, name: str) -> jinja2.Template:
        """The compiled HTML template for an email, compiled on first use and then kept."""
        if name not in self._html:
            self._html[name] = self._html_env.from_string(self.postprocess_html(self.compile_mjml(name)))
        return self._html[name]

    def partial(self, name: str, filename: str) -> jinja2.Template:
        """A piece of an email rendered on its own, such as one paper's card in a digest.

        A piece rendered once can be handed to many emails (as ``Markup`` for HTML) instead of being
        rendered again inside each. ``.html`` pieces are autoescaped and minified like the body.
        """
        if not filename.endswith(".html"):
            return self._text_env.get_template(f"email/{name}/{filename}")
        key = f"{name}/{filename}"
        if key not in self._html:
            source = self.email_dir / name / filename
            if not source.is_file():
                raise TemplateError(f"no template {source}")
            self._html[key] = self._html_env.from_string(self.postprocess_html(source.read_text()))
        return self._html[key]

    def postprocess_html(self, html: str) -> str:
        """Shrink the compiled HTML (see :func:`minify_html`) before it becomes a Jinja template."""
        return minify_html(html)

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render an email's subject, text and HTML parts with ``context``."""
        subject = self._text_env.get_template(f"email/{name}/subject.txt").render(context)
        text = self._text_env.get_template(f"email/{name}/body.txt").render(context)
        html = self.html_template(name).render(context)
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)


def ascii_html(value: object) -> Markup:
    """A value as escaped HTML in ASCII: other characters as references (``·`` → ``&#183;``).

    With every value so, a rendered email is ASCII throughout, as its HTML part is sent anyway, and
    an ASCII string is joined and encoded many times faster than one with a single "·" in it.
    """
    html = escape(value)
    return html if html.isascii() else Markup(html.encode("ascii", "xmlcharrefreplace").decode("ascii"))  # noqa: S704 - escaped above


# Whitespace that only formats the source: a line break between two tags (or Jinja block tags).
_FORMATTING_BREAK = re.compile(r"(>|%\})\s*\n\s*(<|\{%)")
_WHITESPACE_RUN = re.compile(r"\s*\n\s*|[ \t]{2,}")
# Where whitespace is content (pre, textarea) or CSS (style), markup rules don't apply.
_SPECIAL_BLOCK = re.compile(r"(<style\b.*?</style>|<pre\b.*?</pre>|<textarea\b.*?</textarea>)", re.S | re.I)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_SPACE = re.compile(r"\s*([{};,>])\s*|(:)\s+")


def minify_html(html: str) -> str:
    """Drop formatting whitespace from compiled email HTML, keeping what it shows and its Jinja tags.

    Conservative on purpose: a line break between two tags is formatting and goes; any other run
    of whitespace becomes one space, which HTML renders the same. CSS loses comments and the
    spaces around its punctuation. Jinja ``{{ }}`` and ``{% %}`` tags are never touched inside.
    """
    pieces = _SPECIAL_BLOCK.split(html)
    last = len(pieces) - 1
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            # Markup sits between special blocks, which start with "<" and end with ">": stand-ins
            # for those edges let the formatting rule see across them, and are cut off again.
            before, after = (">" if index else ""), ("<" if index < last else "")
            piece = _FORMATTING_BREAK.sub(r"\1\2", before + piece + after)
            piece = _WHITESPACE_RUN.sub(" ", piece)
            pieces[index] = piece[len(before) : len(piece) - len(after)]
        elif piece[:6].lower() == "<style":
            css = " ".join(_CSS_COMMENT.sub("", piece).split())
            pieces[index] = _CSS_SPACE.sub(r"\1\2", css).replace(";}", "}")
    return "".join(pieces)


@cache
def get_templates(root: Path | None = None) -> EmailTemplates:
    """The process-wide email templates (compiled lazily, once per process)."""
    return EmailTemplates(root or templates_dir())
