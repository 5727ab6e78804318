"""Reads for market data: what to fetch, what to compare new prices with, provider use, and the read API."""
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import F, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from .models import Asset, PriceAnomaly, PriceBar, ProviderUsage, Quote


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


def closes_before(*, symbols: Sequence[str], day: date) -> dict[str, Decimal]:
    """Each symbol's last stored close before `day`, in one query; symbols without one are absent."""
    earlier = PriceBar.objects.filter(asset_id=OuterRef("pk"), date__lt=day).order_by("-date")
    rows = (Asset.objects.filter(symbol__in=symbols).annotate(close=Subquery(earlier.values("close")[:1]))
            .values_list("symbol", "close"))
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
    rows = (Asset.objects.filter(symbol__in=symbols)
            .annotate(held=Sum("holdings__quantity"), price=Coalesce(F("quote__price"), Subquery(last_close)))
            .values_list("symbol", "held", "price"))
    return {symbol: float(held or 0) * float(price or 0) for symbol, held, price in rows}


def provider_usage_per_day(*, start: date, end: date, provider: str | None = None) -> list[dict]:
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


# --- Read API: JSON-ready dicts (decimals as strings, times in UTC) the data cache stores ---

ASSET_FIELDS = ("symbol", "name", "exchange", "currency", "asset_class", "is_active")
DEFAULT_PRICE_WINDOW_DAYS = 365
QUOTE_FIELDS = ("price", "previous_close", "change", "as_of")


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _quote(row: dict) -> dict | None:
    quote = {name: _json_value(row.pop(f"quote__{name}")) for name in QUOTE_FIELDS}
    return quote if quote["price"] is not None else None


def all_symbols() -> list[str]:
    """Every asset's symbol, in the asset list's order."""
    return list(Asset.objects.order_by("symbol").values_list("symbol", flat=True))


def asset_page(*, page: int, size: int) -> dict | None:
    """One page of every asset by symbol, each with its latest quote: {"count", "results"}.
    None past the last page."""
    count = Asset.objects.count()
    if page < 1 or page > max(1, math.ceil(count / size)):
        return None
    rows = Asset.objects.order_by("symbol").values(*ASSET_FIELDS, *(f"quote__{name}" for name in QUOTE_FIELDS))
    results = []
    for row in rows[(page - 1) * size:page * size]:
        quote = _quote(row)
        results.append({**row, "quote": quote})
    return {"count": count, "results": results}


def asset_list_pages(*, symbols: Sequence[str], size: int) -> set[int]:
    """The asset list pages that show these symbols (the list is ordered as all_symbols)."""
    wanted = set(symbols)
    if not wanted:
        return set()
    return {position // size + 1 for position, symbol in enumerate(all_symbols()) if symbol in wanted}


def price_series(*, symbol: str) -> dict | None:
    """An asset's whole stored daily history as columns (oldest first) and its latest quote.

    None when there is no such asset. Columns keep a long history compact in the cache; the
    read API slices them to the requested dates.
    """
    asset = Asset.objects.filter(symbol=symbol).values(
        "id", *ASSET_FIELDS, *(f"quote__{name}" for name in QUOTE_FIELDS)).first()
    if asset is None:
        return None
    bars = PriceBar.objects.filter(asset_id=asset.pop("id")).order_by("date").values_list(
        "date", "open", "high", "low", "close", "volume")
    columns = list(zip(*bars)) or [()] * 6
    dates, opens, highs, lows, closes, volumes = columns
    quote = _quote(asset)
    return {
        **asset, "quote": quote,
        "dates": [day.isoformat() for day in dates],
        "open": [str(v) for v in opens], "high": [str(v) for v in highs], "low": [str(v) for v in lows],
        "close": [str(v) for v in closes], "volume": list(volumes),
    }


def price_window(*, series: dict, start: date | None = None, end: date | None = None) -> dict:
    """The bars of a price_series between start and end inclusive, as rows; by default the
    year up to the last bar."""
    dates = series["dates"]
    end = end or (date.fromisoformat(dates[-1]) if dates else date.today())
    window = timedelta(days=DEFAULT_PRICE_WINDOW_DAYS)
    start = start or (end - window if end - date.min >= window else date.min)  # no year before year 1
    first, stop = bisect_left(dates, start.isoformat()), bisect_right(dates, end.isoformat())
    columns = (series[name][first:stop] for name in ("dates", "open", "high", "low", "close", "volume"))
    rows = [{"date": day, "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for day, o, h, lo, c, v in zip(*columns)]
    about = {name: series[name] for name in (*ASSET_FIELDS, "quote")}
    return {**about, "start": start.isoformat(), "end": end.isoformat(), "count": len(rows), "prices": rows}
