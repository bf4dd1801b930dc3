"""The read-ahead used on PostgreSQL: same items, errors surface, and no thread outlives it."""

import threading

import pytest

from papermail.trending.signals import READ_AHEAD_BATCHES, _read_ahead


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "trending-read-ahead"]


def test_it_yields_every_batch_in_order():
    assert list(_read_ahead(iter(range(50)))) == list(range(50))
    assert reader_threads() == []


def test_an_error_while_fetching_is_raised_to_the_consumer():
    def batches():
        yield 1
        raise ConnectionError("server closed the connection")

    reader = _read_ahead(batches())
    assert next(reader) == 1
    with pytest.raises(ConnectionError, match="server closed"):
        next(reader)
    assert reader_threads() == []


def test_a_consumer_that_stops_early_stops_the_fetching():
    fetched = []

    def batches():
        for n in range(1000):
            fetched.append(n)
            yield n

    reader = _read_ahead(batches())
    assert next(reader) == 0
    reader.close()  # what happens when scoring raises: the generator is closed
    assert reader_threads() == []
    # It read ahead a little, then stopped: the connection is free for the rollback.
    assert len(fetched) <= READ_AHEAD_BATCHES + 3
