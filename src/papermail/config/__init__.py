"""Settings: every option comes from a ``PAPERMAIL_*`` environment variable (or ``.env``).

The defaults are the embedded single-machine setup: SQLite and a SQLite-backed broker in the data
directory, and mail written to a file outbox there. Production points the URLs at PostgreSQL, Redis
and an SMTP relay.

Each group of settings is a module holding its fields, how they are read and the checks between
them: ``core`` (environment, data directory, database, broker, public URL, secret key), ``sending``
(mail server, sender, digest size, pacing, DKIM), ``fetching`` (arXiv, Hugging Face and the
community signals), ``web`` (signup and its limits), ``trending`` and ``bounces`` (intake, VERP,
the send pause). ``parsers`` turns a variable's text into a value or says why it can't; ``reader``
puts the variable's name in front of that reason; ``secret_key`` makes and judges keys;
``settings`` joins the groups into :class:`Settings` and loads it once per process.

Why not pydantic-settings: its errors span several lines, name the field rather than the variable,
and quote the input (a URL password included), so every field would still need the parsers here and
a wrapper to turn its errors into one masked line; it cannot tell `papermail config` whether a value
came from the environment, ``.env`` or a default; and the checks between settings and the generated
development key would stay hand-written. The code would grow and gain a dependency, so the small
reader stays.
"""

from papermail.config import parsers
from papermail.config.parsers import Rate, validate_timezone
from papermail.config.reader import PREFIX, ConfigError, environment
from papermail.config.secret_key import is_strong_secret, make_secret
from papermail.config.settings import (
    Settings,
    SettingSource,
    get_settings,
    load_settings,
    setting_sources,
    use_settings,
)

__all__ = [
    "PREFIX",
    "ConfigError",
    "Rate",
    "SettingSource",
    "Settings",
    "environment",
    "get_settings",
    "is_strong_secret",
    "load_settings",
    "make_secret",
    "parsers",
    "setting_sources",
    "use_settings",
    "validate_timezone",
]
