"""Counting provider requests and credits per UTC day, for everyone to query afterwards."""

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from .models import ProviderUsage


def record_provider_usage(*, provider: str, calls: int, credits: int, now: datetime | None = None) -> None:
    """Add one call's cost to the day's totals; safe when several workers add at once."""
    if not (calls or credits):
        return
    day = (now or timezone.now()).date()
    # Create the row if this is the day's first call, then increment in the database.
    ProviderUsage.objects.bulk_create([ProviderUsage(day=day, provider=provider)], ignore_conflicts=True)
    ProviderUsage.objects.filter(day=day, provider=provider).update(
        calls=F("calls") + calls, credits=F("credits") + credits
    )
