"""Fixtures for the digest tests: realistic texts and a row builder on the test's session."""

from __future__ import annotations

import pytest

from tests.digest.builders import World, seed_texts


@pytest.fixture(scope="session")
def texts(shared_fixtures) -> list[tuple[str, str]]:
    return seed_texts(shared_fixtures)


@pytest.fixture
def world(session, texts) -> World:
    return World(session, texts)
