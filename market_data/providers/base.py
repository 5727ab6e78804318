"""The market-data provider interface: result types, errors and the abstract provider."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Generic, Literal, TypeVar

import numpy as np

T = TypeVar("T")
ADJUSTMENTS = ("all", "splits", "dividends", "none")


@dataclass(frozen=True)
class QuoteData:
    """The latest price of one symbol; `as_of` is timezone-aware UTC.

    `price` or `as_of` is None only when the provider left it out; such a quote is an
    anomaly and is never stored.
    """

    symbol: str
    price: Decimal | None
    previous_close: Decimal | None
    change: Decimal | None
    as_of: datetime | None
    name: str = ""
    exchange: str = ""
    currency: str = ""


@dataclass(frozen=True, eq=False)
class History:
    """Daily bars of one symbol as column arrays, so 500 symbols x 5 years stay small.

    `dates` is datetime64[D], ascending and unique; prices are float64, volume int64.
    """

    symbol: str
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self):
        n = len(self.dates)
        if any(len(col) != n for col in (self.open, self.high, self.low, self.close, self.volume)):
            raise ValueError(f"history columns of {self.symbol} differ in length")

    def __len__(self) -> int:
        return len(self.dates)

    @classmethod
    def empty(cls, symbol: str) -> "History":
        """A history with no bars, e.g. when nothing traded in the requested range."""
        prices = np.empty(0, dtype=np.float64)
        return cls(
            symbol, np.empty(0, dtype="datetime64[D]"), prices, prices, prices, prices, np.empty(0, dtype=np.int64)
        )


@dataclass
class BatchResult(Generic[T]):
    """What one provider request returned: parsed items, per-symbol errors and its cost.

    `credits_left` is what the provider said remains, when it said so.
    """

    items: dict[str, T] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    credits: int = 0
    credits_left: int | None = None


class ProviderError(Exception):
    """A whole request failed; `transient` says whether trying again later can help."""

    def __init__(self, message: str, *, code: int | None = None, transient: bool = False):
        super().__init__(message)
        self.code = code
        self.transient = transient


class ProviderAuthError(ProviderError):
    """The key is invalid (401) or the plan lacks access (403); retrying cannot help."""

    def __init__(self, message: str, *, code: int | None = 401):
        super().__init__(message, code=code, transient=False)


class ProviderRateLimited(ProviderError):
    """Credits ran out (429): per minute is worth waiting for, per day is not."""

    def __init__(self, message: str, *, scope: Literal["minute", "day"], code: int | None = 429):
        super().__init__(message, code=code, transient=scope == "minute")
        self.scope = scope


class MarketDataProvider(ABC):
    """A source of quotes and daily history; each call is one request of at most `batch_size`."""

    name: str
    batch_size: int

    @abstractmethod
    def fetch_quotes(self, symbols: Sequence[str]) -> BatchResult[QuoteData]:
        """Latest quotes for one batch of symbols."""

    @abstractmethod
    def fetch_history(
        self, symbols: Sequence[str], *, start: date, end: date, adjust: str = "splits"
    ) -> BatchResult[History]:
        """Daily bars from `start` to `end` inclusive for one batch of symbols."""

    def _checked_batch(self, symbols: Sequence[str]) -> list[str]:
        """The batch without duplicates; too many symbols is a caller bug, not a provider error."""
        if isinstance(symbols, str):
            raise TypeError("symbols must be a sequence of strings, not one string")
        unique = list(dict.fromkeys(symbols))
        if len(unique) > self.batch_size:
            raise ValueError(f"{len(unique)} symbols exceed the batch size of {self.batch_size}; use split_batches()")
        return unique


def check_adjust(adjust: str) -> str:
    """Reject an adjustment Twelve Data would not understand before spending a credit."""
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    return adjust
