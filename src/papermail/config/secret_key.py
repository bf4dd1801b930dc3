"""The secret key that signs every link: making one, judging one, and the development key file."""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections import Counter
from pathlib import Path

SECRET_FILE_NAME = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES, MIN_SECRET_BITS = 32, 128
MAKE_SECRET_HINT = "make one with `papermail secret`"  # noqa: S105 - advice, not a secret

log = logging.getLogger(__name__)


def make_secret() -> str:
    """A new random secret key (64 URL-safe characters, 384 bits)."""
    return secrets.token_urlsafe(48)


def is_strong_secret(key: str) -> bool:
    """At least 32 bytes and, by the spread of its characters and no repeats, 128 bits of entropy.

    A guessable key lets anyone forge every link (a short wordlist found ``changeme`` from one
    unsubscribe token in a millisecond); padding a word to 32 bytes doesn't make it random.
    """
    data = key.encode()
    if len(data) < MIN_SECRET_BYTES:
        return False
    counts = Counter(data).values()
    per_byte = -sum(n / len(data) * math.log2(n / len(data)) for n in counts)
    # A repeated part adds nothing: count the bytes that start a 4-byte run not seen before.
    fresh = len({data[i : i + 4] for i in range(len(data) - 3)}) + 3
    return per_byte * fresh >= MIN_SECRET_BITS


def development_secret(data_dir: Path) -> str:
    """Read, or create once, a random secret kept in the data directory (development only)."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = make_secret()
    # O_EXCL: if two processes start at once, exactly one writes and the other reads its key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    log.warning(
        "PAPERMAIL_SECRET_KEY is not set: generated a development key in %s. "
        "Set PAPERMAIL_SECRET_KEY (and PAPERMAIL_ENV=production) before going live.",
        path,
    )
    return key
