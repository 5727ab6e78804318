"""System checks of the refresh settings that would otherwise fail only when a schedule fires or a request comes."""

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.checks import Error, register

from refresh.services.rate_limits import parse_rate
from refresh.services.schedules import parse_local_time


@register()
def check_schedule_settings(app_configs, **kwargs):
    times = {name: getattr(settings, name) for name in ("REFRESH_NIGHTLY_AT", "REFRESH_BENCHMARK_AT")}
    return _unreadable(
        {"REFRESH_SCHEDULE_TZ": settings.REFRESH_SCHEDULE_TZ},
        ZoneInfo,
        what="a known time zone",
        hint="An IANA name such as America/New_York or UTC.",
        check_id="refresh.E001",
    ) + _unreadable(
        times, parse_local_time, what="a time of day", hint="24-hour HH:MM, such as 02:00.", check_id="refresh.E002"
    )


@register()
def check_rate_settings(app_configs, **kwargs):
    """Every rate limit setting reads as a rate, so a typo fails the start instead of each request."""
    rates = {"REFRESH_BURST_RATE": settings.REFRESH_BURST_RATE} | {
        f"REFRESH_RATE_LIMITS[{role!r}]": rate for role, rate in settings.REFRESH_RATE_LIMITS.items()
    }
    return _unreadable(
        {name: rate for name, rate in rates.items() if rate},  # an empty rate turns its limit off
        parse_rate,
        what="a rate",
        hint='A count per unit, such as "10/h" or "5/10s" (units s, m, h, d).',
        check_id="refresh.E003",
    )


def _unreadable(
    values: dict[str, object], read: Callable[[Any], object], *, what: str, hint: str, check_id: str
) -> list[Error]:
    """An error for each setting ``read`` refuses."""
    errors = []
    for name, value in values.items():
        try:
            read(value)
        except (KeyError, TypeError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            errors.append(Error(f"{name} is not {what}: {value}", hint=hint, id=check_id))
    return errors
