"""Digest tasks (filled in by its feature)."""

BEAT_SCHEDULE: dict = {}
