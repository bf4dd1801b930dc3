"""Normalisation: canonical ids, clean text (TeX, markup, entities once), authors, categories, links."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from papermail.arxiv_ids import OLD_STYLE_ARCHIVES, ArxivId, parse_arxiv_id
from papermail.sources.normalise import (
    clean_author,
    clean_text,
    html_to_text,
    normalise_categories,
    normalise_text,
    safe_http_url,
    split_authors,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2104.12255v1", ArxivId("2104.12255", 1)),
        ("http://arxiv.org/abs/2104.12255v1", ArxivId("2104.12255", 1)),
        ("https://arxiv.org/pdf/2604.21935v12.pdf", ArxivId("2604.21935", 12)),
        ("oai:arXiv.org:2604.21935v1", ArxivId("2604.21935", 1)),
        ("arXiv:0704.0001", ArxivId("0704.0001", None)),
        ("2606.00467", ArxivId("2606.00467", None)),
        ("http://arxiv.org/abs/astro-ph/0601001v1", ArxivId("astro-ph/0601001", 1)),
        ("cond-mat/0412498", ArxivId("cond-mat/0412498", None)),
        ("math.GT/0309136v2", ArxivId("math/0309136", 2)),  # the subject class is not part of the id
        ("Quant-Ph/0201082", ArxivId("quant-ph/0201082", None)),
    ],
)
def test_arxiv_ids_are_canonical_with_the_version_kept_apart(raw, expected):
    assert parse_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["abc", "", "https://arxiv.org/api/errors#incorrect_id_format_for_abc", "2113.00001", "12345.6789"]
)
def test_text_without_an_arxiv_id_is_refused(raw):
    with pytest.raises(ValueError, match="no arXiv id"):
        parse_arxiv_id(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"R\'emy", "Rémy"),
        (r"Przemys{\l}aw", "Przemysław"),
        (r"Przemys\l aw", "Przemysław"),
        (r"Kurt G\"odel and {\"O}zg{\"u}r", "Kurt Gödel and Özgür"),
        (r"\v{S}ediv\'y, \c{C}a\u{g}lar, Fran\c cois, Mar\'{\i}a", "Šedivý, Çağlar, François, María"),
        (r"{\O}rsted, Stra{\ss}e, \AA ngstr\"om", "Ørsted, Straße, Ångström"),
        ("Hard-wrapped\n  title\twith   gaps ", "Hard-wrapped title with gaps"),
        (r"\textbf{adaptability} and \emph{oracle problem}", "adaptability and oracle problem"),
        (r"30\% of i.i.d.\ samples, Q\&A", "30% of i.i.d. samples, Q&A"),
        ("0", "0"),
    ],
)
def test_clean_text_decodes_tex_accents_and_unwraps(raw, expected):
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "math",
    [
        r"$O(n)$",
        r"$\tilde{O}(\varepsilon^{-2})$",
        r"$\'e \"o$",  # accents inside math are left exactly as written
        r"\[\tilde \Theta\left(\frac{\sqrt{n}}{\varepsilon_2^{2}}\right),\]",
    ],
)
def test_math_stays_as_written(math):
    assert clean_text(f"runs in {math} time") == f"runs in {math} time"


def test_a_lone_dollar_is_money_not_math():
    text = r"awarded $35,000 in total to R\'emy"
    assert clean_text(text) == "awarded $35,000 in total to Rémy"


def test_plain_text_loses_markup_but_keeps_math_and_literal_entities():
    raw = (
        "<script>alert(1)</script>Attention &lt;b&gt; <b>bold</b> $x<y$ and $z>w$ "
        "<img src=x onerror=alert(1)><!-- hidden --> <p|H|q> a < b"
    )
    assert normalise_text(raw) == "Attention &lt;b&gt; bold $x<y$ and $z>w$ <p|H|q> a < b"


def test_html_decodes_entities_exactly_once():
    # "&amp;lt;b&amp;gt;" in an HTML fragment is the text "&lt;b&gt;": decoded once, never a tag.
    assert html_to_text("a &amp;lt;b&amp;gt; c") == "a &lt;b&gt; c"
    # "&lt;b&gt;" is the text "<b>", which stays text rather than being stripped as a tag.
    assert html_to_text("<p>a &lt;b&gt; <i>c</i></p><script>evil()</script>") == "a <b> c"
    assert html_to_text('<img src="x" onclick="location.href=\'y\'" />caption') == "caption"
    assert html_to_text("<![CDATA[<script></script>]]&gt;") == "]]>"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Anamta Khan, Ratna Kandala,  Deepti, Sheza Munir",
            ["Anamta Khan", "Ratna Kandala", "Deepti", "Sheza Munir"],
        ),
        ("A. Smith (MIT, Cambridge), B. Jones (Oxford)", ["A. Smith", "B. Jones"]),
        (r"R\'emy Martin; Przemys{\l}aw Nowak", ["Rémy Martin", "Przemysław Nowak"]),
        ("Solo", ["Solo"]),
        (" , ,", []),
        ("A (Dept. (CS), MIT), B", ["A", "B"]),
    ],
)
def test_joined_authors_split_in_order(raw, expected):
    assert split_authors(raw) == expected


def test_categories_are_primary_first_without_repeats_or_acm_classes():
    primary, categories = normalise_categories("cs.LG", ["cs.AI", "cs.LG", "I.2.6", "68T05", " stat.ML "])
    assert primary == "cs.LG"
    assert categories == ["cs.LG", "cs.AI", "stat.ML"]
    assert normalise_categories(None, ["astro-ph", "cond-mat.stat-mech"]) == (
        "astro-ph",
        ["astro-ph", "cond-mat.stat-mech"],
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://github.com/MiniMax-AI/MSA", "https://github.com/MiniMax-AI/MSA"),
        ("javascript:alert(1)", None),
        ("/relative/path", None),
        ("https://github.com/a b", None),
        ("http:///no-host", None),
        (None, None),
        (42, None),
    ],
)
def test_only_absolute_http_links_are_kept(raw, expected):
    assert safe_http_url(raw) == expected


# -- idempotence ------------------------------------------------------------------------------------

# Text that exercises the normaliser: TeX commands, braces, math, tags, entities, odd whitespace.
_PIECES = st.sampled_from(
    [
        "\\",
        "'",
        '"',
        "{",
        "}",
        "$",
        "<",
        ">",
        "/",
        "b",
        "e",
        "l",
        "i",
        "ss",
        "v",
        "textbf",
        "emph",
        "script",
        "img src=x",
        "&amp;",
        "&lt;",
        "(",
        ")",
        ",",
        ";",
        " ",
        "\n",
        "\t",
        "\u00a0",
        "\x00",
        "\u212a",  # KELVIN SIGN: NFC turns it into an ASCII K
        "\u0301",
    ]
)
_FEEDISH_TEXT = st.one_of(st.text(), st.lists(_PIECES | st.text(max_size=3)).map("".join))


@given(_FEEDISH_TEXT)
@example(r"\textbf{\textbf{x}}")
@example("<<b>b>")
@example("\\'\u212a")
def test_normalising_text_twice_changes_nothing(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert clean_text(once) == once


@given(_FEEDISH_TEXT)
def test_clean_text_is_idempotent(text):
    once = clean_text(text)
    assert clean_text(once) == once


@given(_FEEDISH_TEXT)
def test_html_to_text_yields_clean_text(text):
    once = html_to_text(text)
    assert clean_text(once) == once


@given(_FEEDISH_TEXT)
@example("A (MIT, B")
def test_splitting_authors_again_changes_nothing(text):
    names = split_authors(text)
    assert split_authors(", ".join(names)) == names
    assert [clean_author(name) for name in names] == names


@given(
    st.from_regex(
        r"(arXiv:|https://arxiv\.org/abs/)?(\d{2}(0[1-9]|1[0-2])\.\d{4,5}|"
        rf"({'|'.join(OLD_STYLE_ARCHIVES)})/\d{{2}}(0[1-9]|1[0-2])\d{{3}})(v\d{{1,2}})?",
        fullmatch=True,
    )
)
def test_canonical_ids_parse_to_themselves(raw):
    canonical = parse_arxiv_id(raw).id
    assert parse_arxiv_id(canonical) == ArxivId(canonical, None)
