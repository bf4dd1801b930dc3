"""CSV cells safe to open in a spreadsheet (OWASP CSV injection), and read back unchanged."""

from __future__ import annotations

# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection); an
# address may legally start with any of them, and anyone can plant one with an unconfirmed signup.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The OWASP escape: a leading apostrophe makes the spreadsheet show the cell as text.
CELL_ESCAPE = "'"


def neutralise_cell(text: str) -> str:
    """The cell as written to CSV: an apostrophe before a formula start (or before an apostrophe)."""
    if text.startswith((*FORMULA_STARTS, CELL_ESCAPE)):
        return CELL_ESCAPE + text
    return text


def restore_cell(text: str) -> str:
    """The value :func:`neutralise_cell` was given: an export reads back unchanged."""
    if text.startswith(CELL_ESCAPE) and text[1:].startswith((*FORMULA_STARTS, CELL_ESCAPE)):
        return text[1:]
    return text
