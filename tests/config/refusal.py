"""The one check of a bad setting: start-up stops with one line naming its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from papermail import config
from tests.conftest import settings_environ


def refusal(data_dir: Path, variable: str, value: str | None = None, **others: str) -> str:
    """Why the test settings with ``variable=value`` and ``others`` fail: one line naming ``variable``."""
    values = others if value is None else {**others, variable: value}
    with pytest.raises(config.ConfigError) as raised:
        config.load_settings(settings_environ(data_dir, **values))
    message = str(raised.value)
    assert raised.value.variable == f"{config.PREFIX}{variable}"
    assert message.startswith(f"{config.PREFIX}{variable}: "), message
    assert "\n" not in message
    return message
