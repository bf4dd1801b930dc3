"""Core settings: the environment, the data directory, the database, the broker, the public URL, the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from papermail.config import parsers as parse
from papermail.config.reader import ConfigError, Reader, secret
from papermail.config.secret_key import (
    MAKE_SECRET_HINT,
    MIN_SECRET_BYTES,
    development_secret,
    is_strong_secret,
)

ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True, repr=False)
class CoreSettings:
    """Where papermail keeps its data and queue, where its pages are, and the key signing its links."""

    env: str
    data_dir: Path
    database_url: str
    broker_url: str
    base_url: str
    secret_key: str = secret()
    old_secret_keys: tuple[str, ...] = secret()
    celery_queue: str
    beat_lease_seconds: float

    @property
    def is_production(self) -> bool:
        """True when secrets and real addresses are required."""
        return self.env == "production"


def read_core(read: Reader, make_key: Callable[[Path], str] = development_secret) -> dict[str, object]:
    """The core settings; ``make_key`` supplies a development key when PAPERMAIL_SECRET_KEY is unset."""
    env = read.get("ENV", parse.one_of(ENVIRONMENTS), "development")
    data_dir = Path(read.get("DATA_DIR", parse.text, "./var")).expanduser().resolve()
    secret_key = read.raw("SECRET_KEY")
    if not secret_key:
        if env == "production":
            raise ConfigError("SECRET_KEY", f"is required when PAPERMAIL_ENV=production; {MAKE_SECRET_HINT}")
        secret_key = make_key(data_dir)
    old_secret_keys = read.get("OLD_SECRET_KEYS", parse.key_list, "")
    if env == "production":
        for name, keys in (("SECRET_KEY", [secret_key]), ("OLD_SECRET_KEYS", old_secret_keys)):
            if any(not is_strong_secret(key) for key in keys):
                raise ConfigError(
                    name, f"is too weak for production: {MIN_SECRET_BYTES}+ random bytes; {MAKE_SECRET_HINT}"
                )
    return {
        "env": env,
        "data_dir": data_dir,
        "database_url": read.get("DATABASE_URL", parse.database_url, f"sqlite:///{data_dir}/papermail.db"),
        "broker_url": read.get("BROKER_URL", parse.broker_url, f"sqla+sqlite:///{data_dir}/broker.db"),
        "base_url": read.get("BASE_URL", parse.base_url, "http://localhost:8000"),
        "secret_key": secret_key,
        "old_secret_keys": old_secret_keys,
        "celery_queue": read.get("CELERY_QUEUE", parse.text, "papermail"),
        "beat_lease_seconds": read.get("BEAT_LEASE_SECONDS", parse.positive_float, "60"),
    }
