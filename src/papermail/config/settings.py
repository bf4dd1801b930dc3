"""The effective configuration: all groups in one :class:`Settings`, loaded once per process."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from dotenv import dotenv_values

from papermail.config.bounces import BounceSettings, read_bounces
from papermail.config.core import CoreSettings, read_core
from papermail.config.fetching import FetchSettings, read_fetching
from papermail.config.parsers import Rate
from papermail.config.reader import PREFIX, Reader, environment
from papermail.config.secret_key import development_secret
from papermail.config.sending import SendingSettings, read_sending
from papermail.config.trending import TrendSettings, read_trending
from papermail.config.web import WebSettings, read_web
from papermail.redaction import MASK, mask_secrets


# The groups' fields come in the order of the bases read right to left: core first.
@dataclass(frozen=True, repr=False)
class Settings(BounceSettings, TrendSettings, WebSettings, FetchSettings, SendingSettings, CoreSettings):
    """The effective configuration; build it with :func:`load_settings`."""

    def __repr__(self) -> str:
        # Never let a secret or a URL password reach a log line or a traceback.
        shown = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Settings({shown})"

    def masked(self) -> dict[str, str]:
        """The settings as strings, with secrets and URL passwords hidden, for display."""
        shown: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                text = MASK if value else "(not set)"
            elif isinstance(value, Rate):
                text = value.spec
            elif value is None:
                text = "(not set)"
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = mask_secrets(str(value))
            shown[f.name] = text
        return shown


SECRET_FIELDS = tuple(f.name for f in fields(Settings) if f.metadata.get("secret"))
SECRET_VARIABLES = tuple(name.upper() for name in SECRET_FIELDS)


def _load(read: Reader, make_key: Callable[[Path], str] = development_secret) -> Settings:
    """Read every group, in an order that lets a default depend on an earlier group's value."""
    core = read_core(read, make_key)
    sending = read_sending(read, core["data_dir"])  # type: ignore[arg-type]
    return Settings(
        **core,
        **sending,
        **read_fetching(read, sending["mail_from"]),  # type: ignore[arg-type]
        **read_web(read),
        **read_trending(read),
        **read_bounces(read),
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; raise ConfigError naming the first bad variable."""
    return _load(Reader(environment(environ) if environ is None else environ))


@dataclass(frozen=True)
class SettingSource:
    """One ``PAPERMAIL_*`` variable: the text in effect and where it came from."""

    variable: str
    value: str
    source: str  # "environment", ".env", "default" or "generated"


def setting_sources() -> list[SettingSource]:
    """Every variable papermail reads, its value (secrets masked) and where it came from."""
    dotenv = {k for k, v in dotenv_values(".env").items() if v is not None}
    reader = Reader(environment())
    _load(reader, make_key=lambda _data_dir: "")  # only looking: never write a key file
    sources = []
    for name in dict.fromkeys(reader.read):
        variable = PREFIX + name
        if name in reader.defaulted:
            value, source = reader.defaulted[name], "default"
        elif reader.values.get(variable):
            value = reader.values[variable]
            source = "environment" if variable in os.environ or variable not in dotenv else ".env"
        else:
            value, source = "", "generated" if name == "SECRET_KEY" else "default"
        if name in SECRET_VARIABLES:
            value = MASK if value or source == "generated" else "(not set)"
        sources.append(SettingSource(variable, mask_secrets(value, value) or "(not set)", source))
    return sources


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded from the environment on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def use_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (``None`` reloads from the environment on next use)."""
    global _current
    _current = settings
