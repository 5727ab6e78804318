"""System checks of the refresh settings that would otherwise fail only when a schedule fires."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.checks import Error, register

from refresh.services.schedules import parse_local_time


@register()
def check_schedule_settings(app_configs, **kwargs):
    errors = []
    try:
        ZoneInfo(settings.REFRESH_SCHEDULE_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(
            Error(
                f"REFRESH_SCHEDULE_TZ is not a known time zone: {settings.REFRESH_SCHEDULE_TZ}",
                hint="An IANA name such as America/New_York or UTC.",
                id="refresh.E001",
            )
        )
    for name in ("REFRESH_NIGHTLY_AT", "REFRESH_BENCHMARK_AT"):
        try:
            parse_local_time(getattr(settings, name))
        except ValueError:
            errors.append(
                Error(
                    f"{name} is not a time of day: {getattr(settings, name)}",
                    hint="24-hour HH:MM, such as 02:00.",
                    id="refresh.E002",
                )
            )
    return errors
