"""Period keys in the subscriber's own timezone: DST never makes a period fire twice or be skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papermail.db.models import Frequency
from papermail.digest.period import (
    Schedule,
    frequency_of_key,
    latest_period,
    next_period,
    period_for_key,
    validate_period_key,
)

# Zones with DST both ways, half-hour offsets, a 30-minute DST (Lord Howe), and the far edges.
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Apia",
]

schedules = st.builds(
    Schedule,
    frequency=st.sampled_from(list(Frequency)),
    weekday=st.integers(0, 6),
    hour=st.integers(0, 23),
    timezone=st.one_of(st.sampled_from(ZONES), st.timezones().map(str)),
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(schedules, instants)
def test_the_latest_period_is_due_and_the_next_is_not(schedule, now):
    period = latest_period(schedule, now)
    assert period.send_at <= now < next_period(schedule, period).send_at
    assert period_for_key(schedule, period.key) == period
    assert frequency_of_key(period.key) == schedule.frequency


@settings(max_examples=30, deadline=None)
@given(
    schedules,
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
)
def test_a_planner_running_often_fires_each_period_once_in_order(schedule, start):
    """Walk five weeks: each key appears in one unbroken run, in order, none skipped, none twice."""
    seen: list[str] = []
    now = start
    while now < start + timedelta(days=35):
        key = latest_period(schedule, now).key
        if not seen or seen[-1] != key:
            assert key not in seen, f"{key} fired twice"
            seen.append(key)
        # Finer than any DST shift (30 minutes at Lord Howe), coarse enough to stay quick.
        now += timedelta(minutes=15) if schedule.frequency == Frequency.DAILY else timedelta(minutes=30)
    first = latest_period(schedule, start)
    expected = [first.key]
    while len(expected) < len(seen):
        expected.append(next_period(schedule, period_for_key(schedule, expected[-1])).key)
    assert seen == expected


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC)),  # 02:00 → 03:00: 02:30 doesn't exist
        ("Europe/Berlin", datetime(2026, 10, 25, 1, tzinfo=UTC)),  # 03:00 → 02:00: 02:30 happens twice
        ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
    ],
)
def test_a_send_hour_inside_a_dst_change_still_has_exactly_one_instant(zone, around):
    # Sunday 02:00 local, the hour clocks jump over (spring) or repeat (autumn).
    schedule = Schedule(Frequency.WEEKLY, weekday=6, hour=2, timezone=zone)
    period = latest_period(schedule, around + timedelta(hours=6))
    assert around - timedelta(hours=3) <= period.send_at <= around + timedelta(hours=3)
    assert latest_period(schedule, period.send_at).key == period.key
    assert latest_period(schedule, period.send_at - timedelta(seconds=1)).key != period.key


def test_keys_are_the_local_iso_week_or_date():
    monday_8 = Schedule(Frequency.WEEKLY, weekday=0, hour=8, timezone="Asia/Tokyo")
    # Sunday 23:30 UTC is already Monday 08:30 in Tokyo: that Monday's send time has passed.
    now = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert latest_period(monday_8, now).key == "2026-W48"
    daily = Schedule(Frequency.DAILY, weekday=0, hour=8, timezone="America/Los_Angeles")
    assert latest_period(daily, now).key == "2026-11-22"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-W61", "period 2026-W61 is not a valid ISO week"),
        ("2025-W53", "period 2025-W53 is not a valid ISO week"),
        ("2026-02-30", "period 2026-02-30 is not a valid date"),
        ("next week", "neither an ISO week like 2026-W48 nor a date like 2026-11-26"),
    ],
)
def test_bad_period_keys_are_refused_with_a_message_for_people(text, problem):
    with pytest.raises(ValueError, match=problem):
        validate_period_key(text)


def test_good_period_keys_pass():
    assert validate_period_key(" 2026-W53 ") == "2026-W53"
    assert validate_period_key("2026-11-26") == "2026-11-26"
