"""Reads for market data that the refresh uses to decide what to fetch."""
from collections.abc import Sequence
from datetime import date, datetime

from django.db.models import Max

from .models import Asset, PriceBar, Quote


def quote_fetched_at(*, symbols: Sequence[str]) -> dict[str, datetime]:
    """When each symbol's quote was last fetched; symbols without a quote are absent."""
    rows = Quote.objects.filter(asset__symbol__in=symbols).values_list("asset__symbol", "fetched_at")
    return dict(rows)


def last_bar_dates(*, symbols: Sequence[str]) -> dict[str, date]:
    """The date of each symbol's newest bar, in one aggregate query; symbols without bars are absent."""
    rows = (PriceBar.objects.filter(asset__symbol__in=symbols)
            .order_by().values("asset__symbol").annotate(last=Max("date")))
    return {row["asset__symbol"]: row["last"] for row in rows}


def active_symbols() -> list[str]:
    """Symbols of the assets the refresh keeps current, alphabetically."""
    return list(Asset.objects.filter(is_active=True).order_by("symbol").values_list("symbol", flat=True))
