"""Database access: models, sessions and migrations."""

from papermail.db.session import get_engine, session_factory, session_scope, writer_session_factory

__all__ = ["get_engine", "session_factory", "session_scope", "writer_session_factory"]
