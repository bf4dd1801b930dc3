"""One beat per database: a lease row, taken, renewed, released, and expiring by itself."""

from datetime import timedelta

from freezegun import freeze_time

from papermail import clock
from papermail.db import leases

LEASE = timedelta(seconds=60)


def test_a_held_lease_is_refused_to_another_holder_until_it_runs_out(session):
    with freeze_time(clock.now()) as frozen:
        first = leases.acquire(session, leases.BEAT, "host-a:1:x", LEASE)
        assert first.holder == "host-a:1:x"
        second = leases.acquire(session, leases.BEAT, "host-b:2:y", LEASE)
        assert second == first
        frozen.tick(timedelta(seconds=59))
        assert leases.acquire(session, leases.BEAT, "host-b:2:y", LEASE).holder == "host-a:1:x"
        frozen.tick(timedelta(seconds=2))
        # Killed without releasing: its hold ran out, so the next beat takes over.
        assert leases.acquire(session, leases.BEAT, "host-b:2:y", LEASE).holder == "host-b:2:y"
        assert not leases.renew(session, leases.BEAT, "host-a:1:x", LEASE)


def test_renewing_keeps_the_lease_and_releasing_frees_it_at_once(session):
    with freeze_time(clock.now()) as frozen:
        leases.acquire(session, leases.BEAT, "a", LEASE)
        for _ in range(5):
            frozen.tick(timedelta(seconds=20))
            assert leases.renew(session, leases.BEAT, "a", LEASE)
        assert leases.acquire(session, leases.BEAT, "b", LEASE).holder == "a"
        leases.release(session, leases.BEAT, "a")
        assert leases.acquire(session, leases.BEAT, "b", LEASE).holder == "b"
        leases.release(session, leases.BEAT, "a")  # not ours any more: nothing happens
        assert leases.acquire(session, leases.BEAT, "c", LEASE).holder == "b"
