"""A deterministic, network-free provider that makes up realistic prices for any symbol.

Each symbol follows one fixed total-return path (a geometric random walk over weekdays).
Except crypto (a symbol with a slash, such as BTC/USD), every symbol also pays a quarterly
dividend and some split once, so that the adjustments a provider offers differ as they do on
Twelve Data: `none` gives the prices traded on each day, `splits` divides earlier prices by
later splits, `dividends` scales earlier prices down by later dividends (the factor
1 - dividend / previous close on each ex-date), and `all` does both, which makes the series
follow the total-return path. Adjustments are as of today, as a provider's are.
"""

import time
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import cast

import numpy as np

from .base import BatchResult, History, MarketDataProvider, QuoteData, check_adjust

ORIGIN = np.datetime64("2000-01-03", "D")  # a Monday; every series starts here
# Each series passes through its base price here, keeping recent prices in a realistic range.
_ANCHOR = int(np.busday_count(ORIGIN, np.datetime64("2025-01-02", "D")))
TRADING_DAYS = 252
_BLOCK = 1024  # cached paths grow in blocks so any end date reuses the same cache entry
_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
DIVIDEND_EVERY = 63  # weekdays between ex-dividend dates: quarterly
SPLIT_SHARE = 0.3  # of non-crypto symbols split once, between 2001 and the end of 2023
_ACTIONS_SALT = 0x5DEECE66D

# Independent random streams per symbol, so one quantity never shifts another.
_RETURNS, _GAP, _HIGH, _LOW, _VOLUME, _INTRADAY = range(6)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a counter-based generator, so any slice is computed on its own."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(key: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Uniform numbers in (0, 1) for (symbol key, stream, day index)."""
    salt = np.uint64((key ^ (stream * 0xD1B54A32D192ED03)) & _MASK)
    bits = _splitmix(index.astype(np.uint64) * _GOLDEN ^ salt)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def _normal(key: int, stream: int, index: np.ndarray) -> np.ndarray:
    """Standard normals by Box-Muller from two uniform streams."""
    u1, u2 = _uniform(key, 2 * stream, index), _uniform(key, 2 * stream + 1, index)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@lru_cache(maxsize=4096)
def _profile(seed: int, symbol: str) -> tuple[int, float, float, float, float]:
    """Key, base price, yearly drift, yearly volatility and typical volume of a symbol."""
    text = f"{seed}:{symbol}".encode()
    key = zlib.crc32(text) | zlib.crc32(text[::-1]) << 32  # stable across runs, unlike hash()
    rng = np.random.default_rng(key)
    base_price = float(np.exp(rng.uniform(np.log(10), np.log(400))))
    drift = float(rng.uniform(0.02, 0.12))
    vol = float(rng.uniform(0.10, 0.45))
    volume = float(np.exp(rng.uniform(np.log(1e5), np.log(5e7))))
    return key, base_price, drift, vol, volume


@lru_cache(maxsize=4096)
def _actions(seed: int, symbol: str) -> tuple[float, int, int | None, int]:
    """Dividend per payment (a fraction of the previous close), the first ex-dividend weekday
    index, and the weekday index and ratio of the symbol's split (None: it never splits)."""
    if "/" in symbol:
        return 0.0, 0, None, 1
    rng = np.random.default_rng(_profile(seed, symbol)[0] ^ _ACTIONS_SALT)
    per_payment = float(rng.uniform(0.005, 0.035)) / 4
    first = int(rng.integers(0, DIVIDEND_EVERY))
    split_day = int(rng.integers(260, _ANCHOR - 260)) if rng.random() < SPLIT_SHARE else None
    return per_payment, first, split_day, int(rng.choice([2, 3, 4]))


def _dividend_factor(seed: int, symbol: str, index: np.ndarray) -> np.ndarray:
    """Product of (1 - dividend / previous close) over ex-dates up to each index."""
    per_payment, first, _, _ = _actions(seed, symbol)
    payments = np.clip((np.asarray(index) - first) // DIVIDEND_EVERY + 1, 0, None)
    return (1.0 - per_payment) ** payments


def _split_factor(seed: int, symbol: str, index: np.ndarray) -> np.ndarray:
    """Shares one original share has become by each index."""
    _, _, split_day, ratio = _actions(seed, symbol)
    index = np.asarray(index)
    return np.where(index >= split_day, float(ratio), 1.0) if split_day is not None else np.ones(index.shape)


@lru_cache(maxsize=2048)
def _log_path(seed: int, symbol: str, blocks: int) -> np.ndarray:
    """Cumulative log total returns from ORIGIN over `blocks` x 1024 weekdays (read-only)."""
    key, _, drift, vol, _ = _profile(seed, symbol)
    daily_vol = vol / np.sqrt(TRADING_DAYS)
    steps = (drift - vol**2 / 2) / TRADING_DAYS + daily_vol * _normal(key, _RETURNS, np.arange(blocks * _BLOCK))
    path = np.cumsum(steps)
    path.flags.writeable = False
    return path


def _closes(seed: int, symbol: str, start: int, stop: int, *, as_of: int, adjust: str) -> np.ndarray:
    """Closes for weekday indexes [start, stop) (index -1 is the day before ORIGIN), adjusted
    as a provider adjusts them on weekday `as_of`."""
    _, base_price, *_ = _profile(seed, symbol)
    path = _log_path(seed, symbol, -(-max(stop, _ANCHOR + 1) // _BLOCK))
    logs = np.concatenate(([0.0], path[:stop]))[start + 1 : stop + 1]
    index = np.arange(start, stop)
    # Traded prices: the total-return path less the dividends paid out, divided by the splits;
    # equal to the base price at the anchor.
    anchor = np.array([_ANCHOR])
    traded = (
        base_price
        * np.exp(logs - path[_ANCHOR])
        * _dividend_factor(seed, symbol, index)
        / _dividend_factor(seed, symbol, anchor)
        * _split_factor(seed, symbol, anchor)
        / _split_factor(seed, symbol, index)
    )
    today = np.array([as_of])
    if adjust in ("splits", "all"):
        traded = traded * _split_factor(seed, symbol, index) / _split_factor(seed, symbol, today)
    if adjust in ("dividends", "all"):
        traded = traded * _dividend_factor(seed, symbol, today) / _dividend_factor(seed, symbol, index)
    return np.maximum(traded, 0.01)


def _bars(seed: int, symbol: str, start: int, stop: int, *, as_of: int, adjust: str) -> History:
    """Weekday bars [start, stop) of the symbol's one fixed series, adjusted as of weekday `as_of`."""
    key, *_, vol, volume = _profile(seed, symbol)
    index = np.arange(start, stop)
    daily_vol = vol / np.sqrt(TRADING_DAYS)
    close = _closes(seed, symbol, start, stop, as_of=as_of, adjust=adjust)
    # The day opens near the previous close, carried over any split or dividend of the day
    # (on the total-return path, which has no such jumps, then brought to this day's basis).
    path = _closes(seed, symbol, start - 1, stop, as_of=as_of, adjust="all")
    previous = path[:-1] * close / path[1:]
    open_ = np.maximum(previous * np.exp(0.3 * daily_vol * _normal(key, _GAP, index)), 0.01)
    high = np.maximum(open_, close) * np.exp(0.5 * daily_vol * np.abs(_normal(key, _HIGH, index)))
    low = np.minimum(open_, close) * np.exp(-0.5 * daily_vol * np.abs(_normal(key, _LOW, index)))
    volumes = (volume * np.exp(0.35 * _normal(key, _VOLUME, index))).astype(np.int64) + 1
    dates = np.busday_offset(ORIGIN, index)
    # Rounding is monotonic, so low <= open, close <= high still holds afterwards.
    return History(
        symbol=symbol,
        dates=dates,
        open=np.round(open_, 4),
        high=np.round(high, 4),
        low=np.round(low, 4),
        close=np.round(close, 4),
        volume=volumes,
    )


def _weekday_index(day: date) -> int:
    """Index of the last weekday on or before `day` (-1 before ORIGIN)."""
    return int(np.busday_count(ORIGIN, np.datetime64(day, "D") + 1)) - 1


def _today_index() -> int:
    return _weekday_index(datetime.now(UTC).date())


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.4f}")


class MockProvider(MarketDataProvider):
    """Made-up but realistic prices: a geometric random walk per symbol over weekdays, with
    quarterly dividends and the odd split."""

    name = "mock"

    def __init__(self, seed: int = 7, latency: float = 0.0, fail_symbols: Iterable[str] = (), batch_size: int = 120):
        self.seed = seed
        self.latency = latency
        self.fail_symbols = frozenset(s.upper() for s in fail_symbols)
        self.batch_size = batch_size

    def fetch_quotes(self, symbols: Sequence[str]) -> BatchResult[QuoteData]:
        symbols = self._call(symbols)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        minute = np.array([int(now.timestamp()) // 60])
        last = _weekday_index(now.date())
        result: BatchResult[QuoteData] = BatchResult(calls=1, credits=len(symbols))
        for symbol in self._known(symbols, result):
            key = _profile(self.seed, symbol)[0]
            # The previous close as quoted: in today's shares (split-adjusted), before today's dividend.
            previous, close = _closes(self.seed, symbol, last - 1, last + 1, as_of=last, adjust="splits")
            # Moves every minute so repeated refreshes see changing prices.
            price = _decimal(close * (1 + 0.002 * float(_normal(key, _INTRADAY, minute)[0])))
            previous_close = _decimal(previous)
            result.items[symbol] = QuoteData(
                symbol=symbol,
                price=price,
                previous_close=previous_close,
                change=price - previous_close,
                as_of=now,
                name=symbol,
                exchange="MOCK",
                currency="USD",
            )
        return result

    def fetch_history(
        self, symbols: Sequence[str], *, start: date, end: date, adjust: str = "splits"
    ) -> BatchResult[History]:
        check_adjust(adjust)
        symbols = self._call(symbols)
        today = _today_index()
        # No bars before the series begins or after today, as with a real provider.
        first = max(_weekday_index(start - timedelta(days=1)) + 1, 0)
        stop = min(_weekday_index(end), today) + 1
        result: BatchResult[History] = BatchResult(calls=1, credits=len(symbols))
        for symbol in self._known(symbols, result):
            result.items[symbol] = (
                _bars(self.seed, symbol, first, stop, as_of=today, adjust=adjust)
                if first < stop
                else History.empty(symbol)
            )
        return result

    def corporate_actions(self, symbol: str, *, start: date, end: date) -> dict[str, list[tuple[date, float]]]:
        """The symbol's ex-dividend dates with the dividend as a fraction of the previous close,
        and its split dates with the ratio (new shares per old one), from `start` to `end`."""
        per_payment, first_payment, split_day, ratio = _actions(self.seed, symbol)
        first, last = max(_weekday_index(start - timedelta(days=1)) + 1, 0), _weekday_index(end)

        def day(index: int) -> date:
            return cast("date", np.busday_offset(ORIGIN, index).item())  # a datetime64[D] scalar's item is a date

        payments = range(
            first_payment + -(-max(first - first_payment, 0) // DIVIDEND_EVERY) * DIVIDEND_EVERY,
            last + 1,
            DIVIDEND_EVERY,
        )
        return {
            "dividends": [(day(i), per_payment) for i in payments] if per_payment else [],
            "splits": [(day(split_day), float(ratio))] if split_day is not None and first <= split_day <= last else [],
        }

    def _call(self, symbols: Sequence[str]) -> list[str]:
        symbols = self._checked_batch(symbols)
        if self.latency:
            time.sleep(self.latency)
        return symbols

    def _known(self, symbols: list[str], result: BatchResult) -> list[str]:
        """Symbols that succeed; the configured failures land in `result.errors`."""
        for symbol in symbols:
            if symbol.upper() in self.fail_symbols:
                result.errors[symbol] = f"symbol not found: {symbol}"
        return [s for s in symbols if s not in result.errors]
