"""Turning Twelve Data JSON (numbers as strings) into QuoteData and History."""

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeGuard

import numpy as np

from .base import History, QuoteData

PRICE_COLUMNS = ("open", "high", "low", "close")
_DAY_QUOTA = re.compile(r"\b(day|daily|tomorrow)\b", re.IGNORECASE)
# Errors like these concern the one symbol asked for, not the request or the account.
_SYMBOL_PROBLEM = re.compile(r"symbol|no data is available", re.IGNORECASE)
_NO_DATA = re.compile(r"no data is available", re.IGNORECASE)

MALFORMED = (KeyError, TypeError, ValueError, ArithmeticError, InvalidOperation)


def is_error(entry: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(entry, Mapping) and entry.get("status") == "error"


def is_symbol_error(code: int | None, message: str) -> bool:
    """A 400/404 about a symbol (unknown, needs a higher plan, no data) rather than the request."""
    return code in (400, 404) and bool(_SYMBOL_PROBLEM.search(message))


def is_no_data(entry: Mapping[str, Any]) -> bool:
    """Twelve Data answers an empty date range with an error; for history that is just no bars."""
    return bool(_NO_DATA.search(str(entry.get("message", ""))))


def rate_limit_scope(message: str) -> Literal["minute", "day"]:
    return "day" if _DAY_QUOTA.search(message) else "minute"


def error_message(entry: Mapping[str, Any]) -> str:
    return str(entry.get("message") or "unknown error")[:300]


def per_symbol(payload: object, symbols: list[str]) -> Iterator[tuple[str, object]]:
    """(symbol, entry) pairs: one symbol comes back flat, several come back keyed by symbol."""
    if len(symbols) == 1:
        yield symbols[0], payload
        return
    if not isinstance(payload, Mapping):
        for symbol in symbols:
            yield symbol, None
        return
    by_upper = {str(key).upper(): value for key, value in payload.items()}
    for symbol in symbols:
        yield symbol, payload.get(symbol, by_upper.get(symbol.upper()))


def _decimal(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _as_of(entry: Mapping[str, Any]) -> datetime | None:
    """When the quote was true: epoch `timestamp` if given, else `datetime` (requested in UTC)."""
    if entry.get("timestamp") not in (None, ""):
        return datetime.fromtimestamp(int(entry["timestamp"]), tz=UTC)
    if entry.get("datetime") in (None, ""):
        return None
    parsed = datetime.fromisoformat(str(entry["datetime"]))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_quote(symbol: str, entry: Mapping[str, Any]) -> QuoteData:
    """One /quote entry; `close` is the latest price while the market is open.

    A missing price or time stays None for the anomaly screen to quarantine and report.
    """
    price = _decimal(entry.get("close"))
    previous_close = _decimal(entry.get("previous_close"))
    change = _decimal(entry.get("change"))
    if change is None and previous_close is not None and price is not None:
        change = price - previous_close
    return QuoteData(
        symbol=symbol,
        price=price,
        previous_close=previous_close,
        change=change,
        as_of=_as_of(entry),
        name=str(entry.get("name") or ""),
        exchange=str(entry.get("exchange") or ""),
        currency=str(entry.get("currency") or ""),
    )


def _price(value: object) -> object:
    return np.nan if value in (None, "") else value


def parse_history(symbol: str, entry: Mapping[str, Any]) -> History:
    """One /time_series entry as arrays, sorted by date with duplicate dates dropped."""
    values = entry.get("values") or []
    if not values:
        return History.empty(symbol)
    dates = np.array([str(v["datetime"])[:10] for v in values], dtype="datetime64[D]")
    # A missing price becomes NaN: the anomaly screen reports and drops that bar.
    prices = {name: np.array([_price(v.get(name)) for v in values], dtype=np.float64) for name in PRICE_COLUMNS}
    # Indexes and forex pairs have no volume.
    volume = np.array([v.get("volume") or 0 for v in values], dtype=np.float64).round().astype(np.int64)
    dates, first = np.unique(dates, return_index=True)
    return History(
        symbol=symbol,
        dates=dates,
        open=prices["open"][first],
        high=prices["high"][first],
        low=prices["low"][first],
        close=prices["close"][first],
        volume=volume[first],
    )
