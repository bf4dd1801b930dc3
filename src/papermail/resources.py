"""Where packaged files live, in a checkout and in an installed wheel alike."""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The ``templates/`` directory: inside the package in a wheel, at the repo root in a checkout."""
    packaged = _PACKAGE_DIR / "templates"
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parents[1] / "templates"
