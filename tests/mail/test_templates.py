"""Every email template compiles once, keeps its Jinja through MJML, renders, and stays self-contained."""

from __future__ import annotations

import re
import shutil

import jinja2
import pytest
from jinja2 import meta
from markupsafe import Markup

from papermail.mail.templates import BASE_DIR_NAME, EmailTemplates, TemplateError, get_templates, minify_html
from papermail.resources import templates_dir

TEMPLATES = get_templates()
EMAIL_DIR = templates_dir() / "email"
JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
INCLUDE = re.compile(r'<mj-include\s+path="([^"]+)"\s*/>')


class SampleCard:
    """A paper as the digest templates read it, with a hostile title and a URL that needs escaping."""

    title = "<b>Bold</b> claims & results"
    abs_url = "https://arxiv.org/abs/2611.00001?a=1&b=2"
    pdf_url = "https://arxiv.org/pdf/2611.00001"
    hf_url = "https://huggingface.co/papers/2611.00001"
    code_url = None
    authors = "Ada Lovelace, Grace Hopper, Alan Turing et al."
    abstract = "We study things. " * 20
    category = "cs.LG · Machine Learning"
    evidence = "+42 upvotes / 24h · +55★ / 24h · 2 days old"
    tldr = "Things, studied <carefully> & well."  # Semantic Scholar's summary, escaped like the rest
    tldr_url = "https://www.semanticscholar.org/arxiv/2611.00001?a=1&b=2"


def digest_sample() -> dict[str, object]:
    card = SampleCard()
    html_card, text_card = (TEMPLATES.partial("weekly-digest", f"card.{kind}") for kind in ("html", "txt"))
    votes = {
        "more_url": "https://papermail.test/vote/more?a=1&b=2",
        "less_url": "https://papermail.test/vote/less",
    }
    return {
        "email_title": "papermail · Week 48, 2026",
        "preview_text": "3 trending papers in cs.LG",
        "period_label": "Week 48, 2026",
        "lead": "3 trending papers in cs.LG",
        "papers": [card] * 3,
        "html_cards": [Markup(html_card.render(p=card, n=n, **votes)) for n in (1, 2, 3)],  # noqa: S704
        "text_cards": [text_card.render(p=card, n=n, **votes) for n in (1, 2, 3)],
        "preferences_url": "https://papermail.test/preferences/tok?x=1&y=2",
        "unsubscribe_url": "https://papermail.test/unsubscribe/tok",
        "view_url": "https://papermail.test/digest/tok",
        "trending_url": "https://papermail.test/trending?topic=cs.CL&topic=cs.LG",
        "footer_reason": "You get this weekly digest because ann@example.org subscribed to papermail.",
        "postal_address": "1 Test Street, Testville",
    }


SAMPLES = {"weekly-digest": digest_sample}


def generic_sample(name: str) -> dict[str, str]:
    """A value for every variable an email's templates use: good enough for simple emails."""
    env = jinja2.Environment(autoescape=True)
    sources = [
        (EMAIL_DIR / name / "subject.txt").read_text(),
        (EMAIL_DIR / name / "body.txt").read_text(),
        (EMAIL_DIR / BASE_DIR_NAME / "footer.txt").read_text(),
        TEMPLATES.postprocess_html(TEMPLATES.compile_mjml(name)),
    ]
    names = set().union(*(meta.find_undeclared_variables(env.parse(source)) for source in sources))
    return {v: f"https://papermail.test/{v}" if v.endswith("_url") else f"sample {v}" for v in names}


def mjml_with_includes(name: str) -> str:
    source = (EMAIL_DIR / name / "body.mjml").read_text()
    return INCLUDE.sub(lambda m: (EMAIL_DIR / m[1]).read_text(), source)


@pytest.fixture(params=TEMPLATES.names())
def email_name(request) -> str:
    return request.param


def test_the_digest_templates_exist():
    assert "weekly-digest" in TEMPLATES.names()


def test_every_template_compiles_and_renders_with_sample_data(email_name):
    context = SAMPLES.get(email_name, lambda: generic_sample(email_name))()
    rendered = TEMPLATES.render(email_name, context)
    assert rendered.subject and rendered.text.strip() and rendered.html.startswith("<!doctype html>")
    assert "{{" not in rendered.html and "{%" not in rendered.html
    assert TEMPLATES.html_template(email_name) is TEMPLATES.html_template(email_name)  # compiled once


def test_subject_templates_are_one_line(email_name):
    context = SAMPLES.get(email_name, lambda: generic_sample(email_name))()
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(  # noqa: S701
        (EMAIL_DIR / email_name / "subject.txt").read_text()
    )
    assert "\n" not in template.render(context).strip()


def test_jinja_survives_mjml_including_inside_href(email_name):
    source_tags = set(JINJA_TAG.findall(mjml_with_includes(email_name)))
    compiled = TEMPLATES.postprocess_html(TEMPLATES.compile_mjml(email_name))
    assert source_tags == set(JINJA_TAG.findall(compiled))
    for tag in re.findall(r'href="(\{\{.*?\}\})"', mjml_with_includes(email_name)):
        assert f'href="{tag}"' in compiled


def test_digest_hrefs_are_escaped_and_filled():
    rendered = TEMPLATES.render("weekly-digest", digest_sample())
    html = rendered.html
    assert html.count('<div class="pm-paper"><p class="pm-meta">') == 3
    assert "\n3. <b>Bold</b> claims & results\n" in rendered.text
    assert 'href="https://arxiv.org/abs/2611.00001?a=1&amp;b=2"' in html
    assert 'href="https://papermail.test/preferences/tok?x=1&amp;y=2"' in html
    assert "&lt;b&gt;Bold&lt;/b&gt; claims &amp; results" in html
    assert "<strong>TL;DR</strong> Things, studied &lt;carefully&gt; &amp; well." in html
    assert 'href="https://www.semanticscholar.org/arxiv/2611.00001?a=1&amp;b=2"' in html


def test_emails_are_self_contained_and_readable_with_images_off(email_name):
    compiled = TEMPLATES.compile_mjml(email_name)
    pieces = [compiled] + [p.read_text() for p in (EMAIL_DIR / email_name).glob("*.html")]
    for remote in ("<img", "<link", "@import", "url(", "src=", "fonts.googleapis"):
        assert not any(remote in piece for piece in pieces), remote
    assert 'name="color-scheme" content="light dark"' in compiled
    assert "prefers-color-scheme: dark" in compiled


def test_minify_keeps_text_spacing_and_jinja_but_drops_formatting():
    source = (
        '<div class="a">\n    <p>one   two\n three</p>\n    {% for p in papers %}\n'
        '    <a href="{{ p.url }}">{{ p.title }}</a> &middot; <a href="x">y</a>\n    {% endfor %}\n</div>\n'
        '<style type="text/css">\n  .a { color : red ;  }\n  /* why */\n'
        "  @media (max-width: 480px) { .b > .c { margin: 0 } }\n</style>"
        "<pre>  keep\n   me </pre>"
    )
    assert minify_html(source) == (
        '<div class="a"><p>one two three</p>{% for p in papers %}'
        '<a href="{{ p.url }}">{{ p.title }}</a> &middot; <a href="x">y</a>{% endfor %}</div>'
        '<style type="text/css">.a{color :red}@media (max-width:480px){.b>.c{margin:0}}</style>'
        "<pre>  keep\n   me </pre>"
    )


def test_minifying_shrinks_the_compiled_digest():
    compiled = TEMPLATES.compile_mjml("weekly-digest")
    assert len(minify_html(compiled)) < 0.95 * len(compiled)


@pytest.fixture
def email_root(tmp_path):
    shutil.copytree(templates_dir() / "email" / "_base", tmp_path / "email" / "_base")
    sample = tmp_path / "email" / "sample"
    sample.mkdir()
    (sample / "subject.txt").write_text("Hello\n  {{ name }}\n")
    (sample / "body.txt").write_text("Hi {{ name }}\n{% include 'email/_base/footer.txt' %}")
    (sample / "body.mjml").write_text(
        '<mjml><mj-include path="_base/head.mjml" /><mj-body><mj-include path="_base/header.mjml" />'
        '<mj-section><mj-column><mj-text><a href="{{ url }}">{{ name }}</a>'
        "{% if items %}{{ items|length }}{% endif %}</mj-text></mj-column></mj-section>"
        '<mj-include path="_base/footer.mjml" /></mj-body></mjml>'
    )
    return tmp_path


def test_mjml_is_compiled_once_and_jinja_survives_it(email_root):
    templates = EmailTemplates(email_root)
    context = {
        "name": "<img src=x onerror=alert(1)>",
        "url": "https://a.example/?q=1&r=2",
        "items": [1, 2],
        "footer_reason": "You asked for it.",
        "postal_address": "1 Street",
    }
    first = templates.render("sample", context)
    assert first.subject == "Hello <img src=x onerror=alert(1)>"
    assert "&lt;img src=x onerror=alert(1)&gt;" in first.html
    assert 'href="https://a.example/?q=1&amp;r=2"' in first.html
    assert "<img" not in first.html
    assert "You asked for it." in first.text
    compiled = templates.html_template("sample")
    templates.render("sample", context)
    assert templates.html_template("sample") is compiled
    assert templates.names() == ["sample"]
    with pytest.raises(TemplateError):
        templates.html_template("missing")
