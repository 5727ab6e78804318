"""The exchange trading calendar: which sessions have closed and when the market was open.

Backed by exchange_calendars (holidays, early closes, the exchange's time zone) for the
exchange MARKET_DATA_CALENDAR names, XNYS by default. Outside the calendar's range the
answers fall back to weekdays, so a far past or future date never raises.
"""

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
from django.conf import settings

CALENDAR_START = "2000-01-03"


@lru_cache(maxsize=4)
def _calendar(name: str, end_year: int):
    # Imported on first use: pandas is heavy, and only workers need the calendar.
    import exchange_calendars  # noqa: PLC0415 - see above

    return exchange_calendars.get_calendar(name, start=CALENDAR_START, end=f"{end_year}-12-31")


def trading_calendar(*, when: datetime):
    """The configured exchange's calendar (an ExchangeCalendar), reaching a year past `when`."""
    return _calendar(settings.MARKET_DATA_CALENDAR, when.year + 1)


def _timestamp(moment: datetime):
    import pandas as pd  # noqa: PLC0415 - heavy, imported on first use as in _calendar

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _covers(calendar, moment) -> bool:
    return calendar.first_minute <= moment <= calendar.last_minute


def last_closed_session(*, now: datetime) -> date:
    """The newest session whose close is at or before `now`: the newest daily bar that can be final."""
    calendar, moment = trading_calendar(when=now), _timestamp(now)
    if not _covers(calendar, moment):
        return np.busday_offset(np.datetime64(now.date(), "D"), -1, roll="forward").astype(date)
    closes = calendar.closes
    return closes.index[closes.searchsorted(moment, side="right") - 1].date()


def market_opened_between(*, since: datetime, now: datetime) -> bool:
    """Whether the market traded at any moment in [since, now]; if not, no new price can exist."""
    if now < since:
        return False
    calendar, start, end = trading_calendar(when=now), _timestamp(since), _timestamp(now)
    if not (_covers(calendar, start) and _covers(calendar, end)):
        return True  # unknown: assume it may have traded
    if calendar.is_open_on_minute(start, ignore_breaks=True) or calendar.is_open_on_minute(end, ignore_breaks=True):
        return True
    return calendar.next_open(start) <= end


def sessions_between(*, start: date, end: date) -> int:
    """How many sessions fall in [start, end]."""
    if end < start:
        return 0
    calendar = trading_calendar(when=datetime.combine(end, datetime.min.time(), UTC))
    if start < calendar.first_session.date() or end > calendar.last_session.date():
        return int(np.busday_count(np.datetime64(start, "D"), np.datetime64(end + timedelta(days=1), "D")))
    return len(calendar.sessions_in_range(start.isoformat(), end.isoformat()))
