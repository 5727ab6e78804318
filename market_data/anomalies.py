"""Screening fetched prices before they are stored: what looks wrong is reported and held back.

A price is suspicious when it is zero or below, when a field is missing, when its
timestamp is stale (older than MARKET_DATA_STALE_AFTER_SESSIONS closed sessions, or older
than the quote already stored), or when it moved more than MARKET_DATA_MAX_DAILY_MOVE from
the previous close. In a history each close is compared with the usable close before it,
so a one-day spike is flagged twice, going up and coming back, while a lasting jump is
flagged once. With MARKET_DATA_QUARANTINE_ANOMALIES (the default) such a quote or bar
is left out of what gets stored; otherwise it is only reported. A price with a missing
field is never stored.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.utils import timezone

from . import selectors
from .calendar import last_closed_session, sessions_between
from .models import AnomalyKind, PriceAnomaly
from .providers.base import History, QuoteData

PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Anomaly:
    """One suspicious price and what it was compared with."""

    symbol: str
    kind: str
    message: str
    observed_on: date | None = None
    value: Decimal | None = None
    reference: Decimal | None = None
    quarantined: bool = True

    def as_dict(self) -> dict:
        """JSON-ready, for the run's record and events."""
        return {
            "symbol": self.symbol,
            "kind": self.kind,
            "message": self.message,
            "date": self.observed_on.isoformat() if self.observed_on else None,
            "value": _text(self.value),
            "reference": _text(self.reference),
            "quarantined": self.quarantined,
        }


def _text(number: Decimal | None) -> str | None:
    """A decimal without trailing zeros, the same whichever database it came from."""
    return None if number is None else format(number.normalize(), "f")


def _move(value: Decimal, reference: Decimal | None) -> float | None:
    if reference is None or reference <= 0:
        return None
    return float(value / reference - 1)


def _too_large(move: float | None) -> bool:
    return move is not None and abs(move) > settings.MARKET_DATA_MAX_DAILY_MOVE


def _quote_problem(
    quote: QuoteData, now: datetime, reference: Decimal | None, stored: tuple[Decimal, datetime] | None
) -> tuple[str, str] | None:
    """(kind, message) of the first thing wrong with a quote, or None."""
    if quote.price is None or quote.as_of is None:
        missing = "price" if quote.price is None else "timestamp"
        return AnomalyKind.MISSING_FIELD, f"The quote has no {missing}."
    if quote.price <= 0:
        return AnomalyKind.NON_POSITIVE, f"Price {quote.price} is not above zero."
    if stored is not None and quote.as_of < stored[1]:
        return AnomalyKind.STALE, f"Dated {quote.as_of:%Y-%m-%d %H:%M}, older than the stored quote."
    closed = sessions_between(start=quote.as_of.date() + timedelta(days=1), end=last_closed_session(now=now))
    if closed > settings.MARKET_DATA_STALE_AFTER_SESSIONS:
        return AnomalyKind.STALE, f"Dated {quote.as_of:%Y-%m-%d}, {closed} sessions ago."
    move = _move(quote.price, reference)
    if _too_large(move):
        return AnomalyKind.LARGE_MOVE, f"Moved {move:+.1%} from the previous close {reference}."
    return None


def _quote_references(quotes: Sequence[QuoteData]) -> dict[str, Decimal]:
    """The close before each quote's day: stored bars first, else the provider's previous close."""
    by_day = defaultdict(list)
    for quote in quotes:
        if quote.as_of is not None:
            by_day[quote.as_of.date()].append(quote.symbol)
    references = {}
    for day, symbols in by_day.items():
        references.update(selectors.closes_before(symbols=symbols, day=day))
    for quote in quotes:
        if quote.symbol not in references and quote.previous_close is not None:
            references[quote.symbol] = quote.previous_close
    return references


def screen_quotes(*, quotes: Sequence[QuoteData], now: datetime | None = None) -> tuple[list[QuoteData], list[Anomaly]]:
    """Quotes fit to store, and the anomalies found among them."""
    now = now or timezone.now()
    quarantine = settings.MARKET_DATA_QUARANTINE_ANOMALIES
    symbols = [quote.symbol for quote in quotes]
    references = _quote_references(quotes)
    stored = selectors.stored_quotes(symbols=symbols)
    accepted, anomalies = [], []
    for quote in quotes:
        reference = references.get(quote.symbol)
        problem = _quote_problem(quote, now, reference, stored.get(quote.symbol))
        if problem is None:
            accepted.append(quote)
            continue
        kind, message = problem
        held_back = quarantine or kind == AnomalyKind.MISSING_FIELD
        anomalies.append(
            Anomaly(
                symbol=quote.symbol,
                kind=kind,
                message=message,
                value=quote.price,
                reference=reference,
                observed_on=quote.as_of.date() if quote.as_of else None,
                quarantined=held_back,
            )
        )
        if not held_back:
            accepted.append(quote)
    return accepted, anomalies


def _history_problems(history: History, reference: float | None) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Which bars are suspicious: (mask of bars to drop, [(index, kind, message)])."""
    prices = np.vstack([getattr(history, name) for name in PRICE_COLUMNS])
    missing = ~np.isfinite(prices).all(axis=0)
    non_positive = ~missing & (prices <= 0).any(axis=0)
    # Each close against the last usable close before it (the stored one for the first bar).
    usable = np.where(missing | non_positive, np.nan, history.close)
    previous = np.concatenate(([np.nan if reference is None else reference], usable[:-1]))
    last_known = np.where(np.isnan(previous), 0, np.arange(len(previous)))
    np.maximum.accumulate(last_known, out=last_known)
    previous = previous[last_known]
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = usable / previous - 1
    large = np.isfinite(moves) & (np.abs(moves) > settings.MARKET_DATA_MAX_DAILY_MOVE)
    problems: list[tuple[int, str, str]] = []
    for index in np.flatnonzero(missing | non_positive | large).tolist():
        if missing[index]:
            problems.append((index, AnomalyKind.MISSING_FIELD, "The bar lacks a price."))
        elif non_positive[index]:
            problems.append((index, AnomalyKind.NON_POSITIVE, "A price of the bar is not above zero."))
        else:
            problems.append(
                (
                    index,
                    AnomalyKind.LARGE_MOVE,
                    f"Close moved {moves[index]:+.1%} from the previous close {previous[index]:.6g}.",
                )
            )
    return missing | non_positive | large, problems


def _without(history: History, drop: np.ndarray) -> History:
    keep = ~drop
    return History(
        history.symbol,
        history.dates[keep],
        history.open[keep],
        history.high[keep],
        history.low[keep],
        history.close[keep],
        history.volume[keep],
    )


def screen_histories(*, histories: Sequence[History]) -> tuple[list[History], list[Anomaly]]:
    """Histories with suspicious bars held back, and the anomalies found in them."""
    quarantine = settings.MARKET_DATA_QUARANTINE_ANOMALIES
    references = {}
    by_start = defaultdict(list)
    for history in histories:
        if len(history):
            by_start[history.dates[0].astype(date)].append(history.symbol)
    for day, symbols in by_start.items():
        references.update(selectors.closes_before(symbols=symbols, day=day))
    accepted, anomalies = [], []
    for history in histories:
        if not len(history):
            accepted.append(history)
            continue
        reference = references.get(history.symbol)
        drop, problems = _history_problems(history, None if reference is None else float(reference))
        for index, kind, message in problems:
            held_back = quarantine or kind == AnomalyKind.MISSING_FIELD
            value = history.close[index]
            anomalies.append(
                Anomaly(
                    symbol=history.symbol,
                    kind=kind,
                    message=message,
                    observed_on=history.dates[index].astype(date),
                    value=Decimal(f"{value:.6f}") if np.isfinite(value) else None,
                    quarantined=held_back,
                )
            )
            if not held_back:
                drop[index] = False
        accepted.append(_without(history, drop) if drop.any() else history)
    return accepted, anomalies


def record_anomalies(*, anomalies: Iterable[Anomaly], refresh_id: str = "", source: str) -> int:
    """Keep the anomalies for review; returns how many were recorded."""
    now = timezone.now()
    rows = [
        PriceAnomaly(
            symbol=a.symbol,
            kind=a.kind,
            message=a.message[:300],
            observed_on=a.observed_on,
            value=a.value,
            reference=a.reference,
            quarantined=a.quarantined,
            refresh_id=refresh_id,
            source=source,
            detected_at=now,
        )
        for a in anomalies
    ]
    PriceAnomaly.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
