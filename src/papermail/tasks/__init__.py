"""Celery tasks: thin adapters that open a session, call one plain function, and commit.

Each module declares its periodic tasks in a ``BEAT_SCHEDULE`` dict next to the tasks themselves.
Task arguments are IDs and plain JSON, never ORM objects.
"""
