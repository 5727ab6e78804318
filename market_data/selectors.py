"""Reads for market data: what to fetch, what to compare new prices with, provider use, and the read API."""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict

from django.db.models import F, Max, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import Asset, PriceAnomaly, PriceBar, ProviderUsage, Quote


def quote_fetched_at(*, symbols: Sequence[str]) -> dict[str, datetime]:
    """When each symbol's quote was last fetched; symbols without a quote are absent."""
    rows = Quote.objects.filter(asset__symbol__in=symbols).values_list("asset__symbol", "fetched_at")
    return dict(rows)


def last_bar_dates(*, symbols: Sequence[str]) -> dict[str, date]:
    """The date of each symbol's newest bar, in one aggregate query; symbols without bars are absent."""
    rows = (
        PriceBar.objects.filter(asset__symbol__in=symbols).order_by().values("asset__symbol").annotate(last=Max("date"))
    )
    return {row["asset__symbol"]: row["last"] for row in rows}


def active_symbols() -> list[str]:
    """Symbols of the assets the refresh keeps current, alphabetically."""
    return list(Asset.objects.filter(is_active=True).order_by("symbol").values_list("symbol", flat=True))


def missing_symbols(*, symbols: Sequence[str]) -> list[str]:
    """The symbols no asset has yet, in the order given."""
    known = set(Asset.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
    return [symbol for symbol in dict.fromkeys(symbols) if symbol not in known]


def closes_before(*, symbols: Sequence[str], day: date) -> dict[str, Decimal]:
    """Each symbol's last stored close before `day`, in one query; symbols without one are absent."""
    earlier = PriceBar.objects.filter(asset_id=OuterRef("pk"), date__lt=day).order_by("-date")
    rows = (
        Asset.objects.filter(symbol__in=symbols)
        .annotate(close=Subquery(earlier.values("close")[:1]))
        .values_list("symbol", "close")
    )
    return {symbol: close for symbol, close in rows if close is not None}


def stored_quotes(*, symbols: Sequence[str]) -> dict[str, tuple[Decimal, datetime]]:
    """Each symbol's stored quote as (price, as_of); symbols without a quote are absent."""
    rows = Quote.objects.filter(asset__symbol__in=symbols).values_list("asset__symbol", "price", "as_of")
    return {symbol: (price, as_of) for symbol, price, as_of in rows}


def exposure_by_symbol(*, symbols: Sequence[str]) -> dict[str, float]:
    """Value held across all portfolios per symbol (quantity x latest price); unheld symbols are 0.

    The latest price is the stored quote, else the last close. Used to fetch the most held
    symbols first when provider credits are short.
    """
    last_close = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date").values("close")[:1]
    rows = (
        Asset.objects.filter(symbol__in=symbols)
        .annotate(held=Sum("holdings__quantity"), price=Coalesce(F("quote__price"), Subquery(last_close)))
        .values_list("symbol", "held", "price")
    )
    return {symbol: float(held or 0) * float(price or 0) for symbol, held, price in rows}


class ProviderUsageDay(TypedDict):
    """One provider's calls and credits on one UTC day."""

    day: date
    provider: str
    calls: int
    credits: int


def provider_usage_per_day(*, start: date, end: date, provider: str | None = None) -> list[ProviderUsageDay]:
    """Provider calls and credits per UTC day and provider in [start, end], newest first."""
    rows = ProviderUsage.objects.filter(day__range=(start, end))
    if provider:
        rows = rows.filter(provider=provider)
    return list(rows.order_by("-day", "provider").values("day", "provider", "calls", "credits"))


def price_anomalies(*, refresh_id: str | None = None, symbol: str | None = None) -> list[PriceAnomaly]:
    """Recorded anomalies, newest first, optionally of one run or one symbol."""
    rows = PriceAnomaly.objects.all()
    if refresh_id:
        rows = rows.filter(refresh_id=refresh_id)
    if symbol:
        rows = rows.filter(symbol=symbol)
    return list(rows.order_by("-detected_at", "symbol"))


# --- Read API: the data its serializers render (market_data/api/serializers.py) ---------------


def all_symbols() -> list[str]:
    """Every asset's symbol, in the asset list's order."""
    return list(Asset.objects.order_by("symbol").values_list("symbol", flat=True))


def asset_list() -> QuerySet[Asset]:
    """Every asset by symbol, with its latest quote (absent before the first)."""
    return Asset.objects.select_related("quote").order_by("symbol")


def asset_list_pages(*, symbols: Sequence[str], size: int) -> set[int]:
    """The asset list pages that show these symbols (the list is ordered as all_symbols)."""
    wanted = set(symbols)
    if not wanted:
        return set()
    return {position // size + 1 for position, symbol in enumerate(all_symbols()) if symbol in wanted}


def asset_history(*, symbol: str) -> Asset | None:
    """An asset with its latest quote and its whole stored daily history (``bars``, oldest
    first, fetched with it); None when there is no such asset."""
    bars = Prefetch("bars", queryset=PriceBar.objects.order_by("date"))
    return Asset.objects.select_related("quote").prefetch_related(bars).filter(symbol=symbol).first()
