"""The NYSE calendar: closed sessions, holidays, early closes, and when a new price can exist."""

from datetime import UTC, date, datetime

import pytest

from market_data.calendar import last_closed_session, market_opened_between, sessions_between


@pytest.mark.parametrize(
    ("now", "session"),
    [
        (datetime(2025, 6, 18, 19, 59, tzinfo=UTC), date(2025, 6, 17)),  # Wednesday, a minute before the close
        (datetime(2025, 6, 18, 20, 0, tzinfo=UTC), date(2025, 6, 18)),  # at the 16:00 New York close
        (datetime(2025, 6, 19, 18, 0, tzinfo=UTC), date(2025, 6, 18)),  # Juneteenth: a holiday
        (datetime(2025, 6, 22, 12, 0, tzinfo=UTC), date(2025, 6, 20)),  # Sunday
        (datetime(2025, 7, 3, 17, 30, tzinfo=UTC), date(2025, 7, 3)),  # after the 13:00 early close
        (datetime(2025, 12, 26, 3, 0, tzinfo=UTC), date(2025, 12, 24)),  # Christmas in between
    ],
)
def test_last_closed_session(now, session):
    assert last_closed_session(now=now) == session


@pytest.mark.parametrize(
    ("since", "now", "opened"),
    [
        # Fetched Friday after the close, asked on Sunday: nothing can have changed.
        (datetime(2025, 6, 20, 20, 30, tzinfo=UTC), datetime(2025, 6, 22, 18, 0, tzinfo=UTC), False),
        # ...and on Monday after the open it can.
        (datetime(2025, 6, 20, 20, 30, tzinfo=UTC), datetime(2025, 6, 23, 13, 31, tzinfo=UTC), True),
        # Over the Juneteenth holiday the market stays shut.
        (datetime(2025, 6, 18, 21, 0, tzinfo=UTC), datetime(2025, 6, 19, 22, 0, tzinfo=UTC), False),
        # During the session it may change at any moment.
        (datetime(2025, 6, 18, 14, 0, tzinfo=UTC), datetime(2025, 6, 18, 14, 5, tzinfo=UTC), True),
        # Fetched before the open, asked after the close: the session happened in between.
        (datetime(2025, 6, 18, 12, 0, tzinfo=UTC), datetime(2025, 6, 18, 22, 0, tzinfo=UTC), True),
    ],
)
def test_market_opened_between(since, now, opened):
    assert market_opened_between(since=since, now=now) is opened


def test_sessions_between_skips_weekends_and_holidays():
    assert sessions_between(start=date(2025, 6, 16), end=date(2025, 6, 23)) == 5  # the 19th is a holiday
    assert sessions_between(start=date(2025, 6, 21), end=date(2025, 6, 22)) == 0
    assert sessions_between(start=date(2025, 6, 23), end=date(2025, 6, 20)) == 0


def test_dates_outside_the_calendar_fall_back_to_weekdays():
    assert last_closed_session(now=datetime(1999, 6, 19, 12, 0, tzinfo=UTC)) == date(1999, 6, 18)
    assert sessions_between(start=date(1999, 6, 14), end=date(1999, 6, 20)) == 5
    assert market_opened_between(since=datetime(1999, 6, 19, tzinfo=UTC), now=datetime(1999, 6, 20, tzinfo=UTC))
