"""arXiv's subject taxonomy as data: every category, the archives that group them, and their names.

This module is the one place that knows the taxonomy (https://arxiv.org/category_taxonomy). Input is
matched case-insensitively and canonicalised (``cs.lg`` is ``cs.LG``). An archive such as
``astro-ph`` or ``math`` is a topic too: it stands for every category in it, as rss.arxiv.org reads it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

FULL_LIST_URL = "https://arxiv.org/category_taxonomy"
# Field -> [(code, name)], as arXiv groups them, physics split by archive so each group stays short.
# An archive comes first in its field and covers all the categories after it that share its prefix.
TAXONOMY: dict[str, list[tuple[str, str]]] = {
    "Computer Science": [
        ("cs", "Computer Science (all of it)"),
        ("cs.AI", "Artificial Intelligence"),
        ("cs.AR", "Hardware Architecture"),
        ("cs.CC", "Computational Complexity"),
        ("cs.CE", "Computational Engineering, Finance, and Science"),
        ("cs.CG", "Computational Geometry"),
        ("cs.CL", "Computation and Language"),
        ("cs.CR", "Cryptography and Security"),
        ("cs.CV", "Computer Vision and Pattern Recognition"),
        ("cs.CY", "Computers and Society"),
        ("cs.DB", "Databases"),
        ("cs.DC", "Distributed, Parallel, and Cluster Computing"),
        ("cs.DL", "Digital Libraries"),
        ("cs.DM", "Discrete Mathematics"),
        ("cs.DS", "Data Structures and Algorithms"),
        ("cs.ET", "Emerging Technologies"),
        ("cs.FL", "Formal Languages and Automata Theory"),
        ("cs.GL", "General Literature"),
        ("cs.GR", "Graphics"),
        ("cs.GT", "Computer Science and Game Theory"),
        ("cs.HC", "Human-Computer Interaction"),
        ("cs.IR", "Information Retrieval"),
        ("cs.IT", "Information Theory"),
        ("cs.LG", "Machine Learning"),
        ("cs.LO", "Logic in Computer Science"),
        ("cs.MA", "Multiagent Systems"),
        ("cs.MM", "Multimedia"),
        ("cs.MS", "Mathematical Software"),
        ("cs.NA", "Numerical Analysis"),
        ("cs.NE", "Neural and Evolutionary Computing"),
        ("cs.NI", "Networking and Internet Architecture"),
        ("cs.OH", "Other Computer Science"),
        ("cs.OS", "Operating Systems"),
        ("cs.PF", "Performance"),
        ("cs.PL", "Programming Languages"),
        ("cs.RO", "Robotics"),
        ("cs.SC", "Symbolic Computation"),
        ("cs.SD", "Sound"),
        ("cs.SE", "Software Engineering"),
        ("cs.SI", "Social and Information Networks"),
        ("cs.SY", "Systems and Control"),
    ],
    "Statistics": [
        ("stat", "Statistics (all of it)"),
        ("stat.AP", "Applications"),
        ("stat.CO", "Computation"),
        ("stat.ME", "Methodology"),
        ("stat.ML", "Machine Learning (Statistics)"),
        ("stat.OT", "Other Statistics"),
        ("stat.TH", "Statistics Theory"),
    ],
    "Electrical Engineering and Systems Science": [
        ("eess", "Electrical Engineering and Systems Science (all of it)"),
        ("eess.AS", "Audio and Speech Processing"),
        ("eess.IV", "Image and Video Processing"),
        ("eess.SP", "Signal Processing"),
        ("eess.SY", "Systems and Control"),
    ],
    "Mathematics": [
        ("math", "Mathematics (all of it)"),
        ("math.AC", "Commutative Algebra"),
        ("math.AG", "Algebraic Geometry"),
        ("math.AP", "Analysis of PDEs"),
        ("math.AT", "Algebraic Topology"),
        ("math.CA", "Classical Analysis and ODEs"),
        ("math.CO", "Combinatorics"),
        ("math.CT", "Category Theory"),
        ("math.CV", "Complex Variables"),
        ("math.DG", "Differential Geometry"),
        ("math.DS", "Dynamical Systems"),
        ("math.FA", "Functional Analysis"),
        ("math.GM", "General Mathematics"),
        ("math.GN", "General Topology"),
        ("math.GR", "Group Theory"),
        ("math.GT", "Geometric Topology"),
        ("math.HO", "History and Overview"),
        ("math.IT", "Information Theory"),
        ("math.KT", "K-Theory and Homology"),
        ("math.LO", "Logic"),
        ("math.MG", "Metric Geometry"),
        ("math.MP", "Mathematical Physics"),
        ("math.NA", "Numerical Analysis"),
        ("math.NT", "Number Theory"),
        ("math.OA", "Operator Algebras"),
        ("math.OC", "Optimization and Control"),
        ("math.PR", "Probability"),
        ("math.QA", "Quantum Algebra"),
        ("math.RA", "Rings and Algebras"),
        ("math.RT", "Representation Theory"),
        ("math.SG", "Symplectic Geometry"),
        ("math.SP", "Spectral Theory"),
        ("math.ST", "Statistics Theory"),
    ],
    "Astrophysics": [
        ("astro-ph", "Astrophysics (all of it)"),
        ("astro-ph.CO", "Cosmology and Nongalactic Astrophysics"),
        ("astro-ph.EP", "Earth and Planetary Astrophysics"),
        ("astro-ph.GA", "Astrophysics of Galaxies"),
        ("astro-ph.HE", "High Energy Astrophysical Phenomena"),
        ("astro-ph.IM", "Instrumentation and Methods for Astrophysics"),
        ("astro-ph.SR", "Solar and Stellar Astrophysics"),
    ],
    "Condensed Matter": [
        ("cond-mat", "Condensed Matter (all of it)"),
        ("cond-mat.dis-nn", "Disordered Systems and Neural Networks"),
        ("cond-mat.mes-hall", "Mesoscale and Nanoscale Physics"),
        ("cond-mat.mtrl-sci", "Materials Science"),
        ("cond-mat.other", "Other Condensed Matter"),
        ("cond-mat.quant-gas", "Quantum Gases"),
        ("cond-mat.soft", "Soft Condensed Matter"),
        ("cond-mat.stat-mech", "Statistical Mechanics"),
        ("cond-mat.str-el", "Strongly Correlated Electrons"),
        ("cond-mat.supr-con", "Superconductivity"),
    ],
    "High Energy, Nuclear and Gravitational Physics": [
        ("gr-qc", "General Relativity and Quantum Cosmology"),
        ("hep-ex", "High Energy Physics - Experiment"),
        ("hep-lat", "High Energy Physics - Lattice"),
        ("hep-ph", "High Energy Physics - Phenomenology"),
        ("hep-th", "High Energy Physics - Theory"),
        ("math-ph", "Mathematical Physics"),
        ("nucl-ex", "Nuclear Experiment"),
        ("nucl-th", "Nuclear Theory"),
    ],
    "Physics": [
        ("physics", "Physics (all of it)"),
        ("physics.acc-ph", "Accelerator Physics"),
        ("physics.ao-ph", "Atmospheric and Oceanic Physics"),
        ("physics.app-ph", "Applied Physics"),
        ("physics.atm-clus", "Atomic and Molecular Clusters"),
        ("physics.atom-ph", "Atomic Physics"),
        ("physics.bio-ph", "Biological Physics"),
        ("physics.chem-ph", "Chemical Physics"),
        ("physics.class-ph", "Classical Physics"),
        ("physics.comp-ph", "Computational Physics"),
        ("physics.data-an", "Data Analysis, Statistics and Probability"),
        ("physics.ed-ph", "Physics Education"),
        ("physics.flu-dyn", "Fluid Dynamics"),
        ("physics.gen-ph", "General Physics"),
        ("physics.geo-ph", "Geophysics"),
        ("physics.hist-ph", "History and Philosophy of Physics"),
        ("physics.ins-det", "Instrumentation and Detectors"),
        ("physics.med-ph", "Medical Physics"),
        ("physics.optics", "Optics"),
        ("physics.plasm-ph", "Plasma Physics"),
        ("physics.pop-ph", "Popular Physics"),
        ("physics.soc-ph", "Physics and Society"),
        ("physics.space-ph", "Space Physics"),
    ],
    "Quantum Physics and Nonlinear Sciences": [
        ("quant-ph", "Quantum Physics"),
        ("nlin", "Nonlinear Sciences (all of it)"),
        ("nlin.AO", "Adaptation and Self-Organizing Systems"),
        ("nlin.CD", "Chaotic Dynamics"),
        ("nlin.CG", "Cellular Automata and Lattice Gases"),
        ("nlin.PS", "Pattern Formation and Solitons"),
        ("nlin.SI", "Exactly Solvable and Integrable Systems"),
    ],
    "Quantitative Biology": [
        ("q-bio", "Quantitative Biology (all of it)"),
        ("q-bio.BM", "Biomolecules"),
        ("q-bio.CB", "Cell Behavior"),
        ("q-bio.GN", "Genomics"),
        ("q-bio.MN", "Molecular Networks"),
        ("q-bio.NC", "Neurons and Cognition"),
        ("q-bio.OT", "Other Quantitative Biology"),
        ("q-bio.PE", "Populations and Evolution"),
        ("q-bio.QM", "Quantitative Methods"),
        ("q-bio.SC", "Subcellular Processes"),
        ("q-bio.TO", "Tissues and Organs"),
    ],
    "Quantitative Finance": [
        ("q-fin", "Quantitative Finance (all of it)"),
        ("q-fin.CP", "Computational Finance"),
        ("q-fin.EC", "Economics"),
        ("q-fin.GN", "General Finance"),
        ("q-fin.MF", "Mathematical Finance"),
        ("q-fin.PM", "Portfolio Management"),
        ("q-fin.PR", "Pricing of Securities"),
        ("q-fin.RM", "Risk Management"),
        ("q-fin.ST", "Statistical Finance"),
        ("q-fin.TR", "Trading and Market Microstructure"),
    ],
    "Economics": [
        ("econ", "Economics (all of it)"),
        ("econ.EM", "Econometrics"),
        ("econ.GN", "General Economics"),
        ("econ.TH", "Theoretical Economics"),
    ],
}

# What most papermail readers follow: shown first on the form, open.
MOST_FOLLOWED = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "stat.ML", "cs.RO")

_NAMES: dict[str, str] = {code: name for group in TAXONOMY.values() for code, name in group}
KNOWN_CATEGORIES: frozenset[str] = frozenset(_NAMES)
# The archives that group several categories ("astro-ph" covers "astro-ph.GA", …).
ARCHIVES: frozenset[str] = frozenset(code for code in _NAMES if any(c.startswith(code + ".") for c in _NAMES))
_BY_FOLDED: dict[str, str] = {code.lower(): code for code in _NAMES}

# The form's groups: the most followed first, then every field without them (no box twice).
CATEGORY_GROUPS: dict[str, list[tuple[str, str]]] = {
    "Most followed": [(code, _NAMES[code]) for code in MOST_FOLLOWED],
    **{
        field: [(code, name) for code, name in group if code not in MOST_FOLLOWED]
        for field, group in TAXONOMY.items()
    },
}


class UnknownCategory(ValueError):
    """A topic that is no arXiv category; the message names the closest ones and the full list."""

    def __init__(self, value: str) -> None:
        self.value, self.closest = value, closest_categories(value)
        super().__init__(unknown_category_message(value, self.closest))

    @property
    def for_visitors(self) -> str:
        """The same words for a web page, whose visitors have no command line."""
        return unknown_category_message(self.value, self.closest, command=False)


def unknown_category_message(value: str, closest: list[str], *, command: bool = True) -> str:
    """The one wording of an unknown topic, wherever it was typed."""
    shown = value if len(value) <= 40 else value[:40] + "…"
    hint = f"; the closest are {', '.join(closest)}" if closest else ""
    where = f"`papermail topics` or {FULL_LIST_URL}" if command else FULL_LIST_URL
    return f"{shown!r} is not an arXiv category{hint}. All of them: {where}"


def canonical_category(value: str) -> str:
    """The canonical spelling of a category typed in any case (``cs.lg`` -> ``cs.LG``)."""
    found = _BY_FOLDED.get(value.strip().lower())
    if found is None:
        raise UnknownCategory(value.strip())
    return found


def canonical_categories(values: Iterable[str]) -> list[str]:
    """Each value canonicalised, repeats dropped, in the order given; UnknownCategory on the first bad one."""
    return list(dict.fromkeys(canonical_category(value) for value in values if value.strip()))


def closest_categories(value: str, limit: int = 3) -> list[str]:
    """Known categories a mistyped ``value`` probably meant: by code, else by a word of the name."""
    folded = value.strip().lower()
    by_code = difflib.get_close_matches(folded, list(_BY_FOLDED), n=limit, cutoff=0.6)
    if by_code:
        return [_BY_FOLDED[code] for code in by_code]
    if len(folded) < 3:
        return []
    return [code for code, name in _NAMES.items() if folded in name.lower()][:limit]


def category_name(code: str) -> str:
    """The human name of a category code, or the code itself if arXiv's taxonomy lacks it."""
    return _NAMES.get(code, code)


def archive_of(category: str) -> str | None:
    """The archive a category belongs to (``astro-ph.GA`` -> ``astro-ph``), if it has one."""
    archive, dot, _rest = category.partition(".")
    return archive if dot and archive in ARCHIVES else None


def with_archives(categories: Iterable[str]) -> frozenset[str]:
    """``categories`` and the archives they belong to: what a paper matches among topics."""
    found = set(categories)
    found.update(archive for category in list(found) if (archive := archive_of(category)))
    return frozenset(found)


def spelled_out(topics: Iterable[str]) -> list[str]:
    """Each topic, an archive followed by its categories: for searches that don't expand archives."""
    members = (c for topic in topics for c in (topic, *sorted(c for c in _NAMES if archive_of(c) == topic)))
    return list(dict.fromkeys(members))
