"""Reading ``PAPERMAIL_*`` variables: the error naming a bad one, the reader noting what it read, secrets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, TypeVar

from dotenv import dotenv_values

from papermail.redaction import mask_secrets

PREFIX = "PAPERMAIL_"
T = TypeVar("T")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{PREFIX}{variable}: {mask_secrets(problem)}")
        self.variable = PREFIX + variable


def secret() -> Any:
    """A settings field shown only as ``****`` by ``repr``, :meth:`Settings.masked` and `papermail config`."""
    return field(metadata={"secret": True})


class Reader:
    """Reads ``PAPERMAIL_*`` values from a mapping, turning parse failures into ConfigError."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.defaulted: dict[str, str] = {}  # variable -> the default used, for `papermail config`
        self.read: list[str] = []  # every variable looked at, in order

    def get(self, name: str, parse: Callable[[str], T], default: str | None) -> T:
        raw = self.values.get(PREFIX + name)
        self.read.append(name)
        if raw is None or raw == "":
            if default is None:
                raise ConfigError(name, "is required but not set")
            raw = self.defaulted[name] = default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, mask_secrets(str(exc), raw)) from None

    def raw(self, name: str, *, listed: bool = True) -> str:
        """The text as given ("" when unset); ``listed=False`` keeps it out of `papermail config`."""
        if listed:
            self.read.append(name)
        return self.values.get(PREFIX + name, "")


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge ``.env`` (if present in the working directory) under the process environment."""
    merged = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    merged.update(os.environ if environ is None else environ)
    return merged
