"""The arXiv categories subscribers can pick, grouped by field, the common ones first."""

from __future__ import annotations

# Field -> [(category, name)]. The first group is what most papermail readers follow.
CATEGORY_GROUPS: dict[str, list[tuple[str, str]]] = {
    "Most followed": [
        ("cs.AI", "Artificial Intelligence"),
        ("cs.CL", "Computation and Language"),
        ("cs.CV", "Computer Vision and Pattern Recognition"),
        ("cs.LG", "Machine Learning"),
        ("stat.ML", "Machine Learning (Statistics)"),
        ("cs.RO", "Robotics"),
    ],
    "Computer Science": [
        ("cs.AR", "Hardware Architecture"),
        ("cs.CC", "Computational Complexity"),
        ("cs.CE", "Computational Engineering, Finance, and Science"),
        ("cs.CG", "Computational Geometry"),
        ("cs.CR", "Cryptography and Security"),
        ("cs.CY", "Computers and Society"),
        ("cs.DB", "Databases"),
        ("cs.DC", "Distributed, Parallel, and Cluster Computing"),
        ("cs.DL", "Digital Libraries"),
        ("cs.DS", "Data Structures and Algorithms"),
        ("cs.ET", "Emerging Technologies"),
        ("cs.FL", "Formal Languages and Automata Theory"),
        ("cs.GR", "Graphics"),
        ("cs.GT", "Computer Science and Game Theory"),
        ("cs.HC", "Human-Computer Interaction"),
        ("cs.IR", "Information Retrieval"),
        ("cs.IT", "Information Theory"),
        ("cs.LO", "Logic in Computer Science"),
        ("cs.MA", "Multiagent Systems"),
        ("cs.MM", "Multimedia"),
        ("cs.NE", "Neural and Evolutionary Computing"),
        ("cs.NI", "Networking and Internet Architecture"),
        ("cs.PL", "Programming Languages"),
        ("cs.SD", "Sound"),
        ("cs.SE", "Software Engineering"),
        ("cs.SI", "Social and Information Networks"),
        ("cs.SY", "Systems and Control"),
    ],
    "Statistics": [
        ("stat.AP", "Applications"),
        ("stat.CO", "Computation"),
        ("stat.ME", "Methodology"),
        ("stat.TH", "Statistics Theory"),
    ],
    "Electrical Engineering and Systems Science": [
        ("eess.AS", "Audio and Speech Processing"),
        ("eess.IV", "Image and Video Processing"),
        ("eess.SP", "Signal Processing"),
        ("eess.SY", "Systems and Control"),
    ],
    "Mathematics": [
        ("math.NA", "Numerical Analysis"),
        ("math.OC", "Optimization and Control"),
        ("math.PR", "Probability"),
        ("math.ST", "Statistics Theory"),
    ],
    "Physics and Biology": [
        ("astro-ph", "Astrophysics"),
        ("cond-mat", "Condensed Matter"),
        ("physics.comp-ph", "Computational Physics"),
        ("quant-ph", "Quantum Physics"),
        ("q-bio.NC", "Neurons and Cognition"),
        ("q-bio.QM", "Quantitative Methods"),
    ],
    "Economics and Finance": [
        ("econ.EM", "Econometrics"),
        ("q-fin.CP", "Computational Finance"),
    ],
}

KNOWN_CATEGORIES: frozenset[str] = frozenset(
    code for group in CATEGORY_GROUPS.values() for code, _name in group
)


def category_name(code: str) -> str:
    """The human name of a category code, or the code itself if we don't list it."""
    for group in CATEGORY_GROUPS.values():
        for known, name in group:
            if known == code:
                return name
    return code
