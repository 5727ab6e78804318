"""A deterministic, network-free provider that makes up realistic prices for any symbol."""
import time
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import numpy as np

from .base import BatchResult, History, MarketDataProvider, QuoteData, check_adjust

ORIGIN = np.datetime64("2000-01-03", "D")  # a Monday; every series starts here
# Each series passes through its base price here, keeping recent prices in a realistic range.
_ANCHOR = int(np.busday_count(ORIGIN, np.datetime64("2025-01-02", "D")))
TRADING_DAYS = 252
_BLOCK = 1024  # cached paths grow in blocks so any end date reuses the same cache entry
_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

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


@lru_cache(maxsize=2048)
def _log_path(seed: int, symbol: str, blocks: int) -> np.ndarray:
    """Cumulative log returns from ORIGIN over `blocks` x 1024 weekdays (read-only)."""
    key, _, drift, vol, _ = _profile(seed, symbol)
    daily_vol = vol / np.sqrt(TRADING_DAYS)
    steps = (drift - vol**2 / 2) / TRADING_DAYS + daily_vol * _normal(key, _RETURNS, np.arange(blocks * _BLOCK))
    path = np.cumsum(steps)
    path.flags.writeable = False
    return path


def _closes(seed: int, symbol: str, start: int, stop: int) -> np.ndarray:
    """Closes for weekday indexes [start, stop); index -1 is the day before ORIGIN."""
    _, base_price, *_ = _profile(seed, symbol)
    path = _log_path(seed, symbol, -(-max(stop, _ANCHOR + 1) // _BLOCK))
    logs = np.concatenate(([0.0], path[:stop]))[start + 1:stop + 1]
    return np.maximum(base_price * np.exp(logs - path[_ANCHOR]), 0.01)


def _bars(seed: int, symbol: str, start: int, stop: int) -> History:
    """Weekday bars [start, stop) of the symbol's one fixed series."""
    key, *_, vol, volume = _profile(seed, symbol)
    index = np.arange(start, stop)
    daily_vol = vol / np.sqrt(TRADING_DAYS)
    close = _closes(seed, symbol, start - 1, stop)
    previous, close = close[:-1], close[1:]
    open_ = np.maximum(previous * np.exp(0.3 * daily_vol * _normal(key, _GAP, index)), 0.01)
    high = np.maximum(open_, close) * np.exp(0.5 * daily_vol * np.abs(_normal(key, _HIGH, index)))
    low = np.minimum(open_, close) * np.exp(-0.5 * daily_vol * np.abs(_normal(key, _LOW, index)))
    volumes = (volume * np.exp(0.35 * _normal(key, _VOLUME, index))).astype(np.int64) + 1
    dates = np.busday_offset(ORIGIN, index)
    # Rounding is monotonic, so low <= open, close <= high still holds afterwards.
    return History(symbol, dates, *(np.round(col, 4) for col in (open_, high, low, close)), volumes)


def _weekday_index(day: date) -> int:
    """Index of the last weekday on or before `day` (-1 before ORIGIN)."""
    return int(np.busday_count(ORIGIN, np.datetime64(day, "D") + 1)) - 1


def _decimal(value: float) -> Decimal:
    return Decimal(f"{value:.4f}")


class MockProvider(MarketDataProvider):
    """Made-up but realistic prices: a geometric random walk per symbol over weekdays."""

    name = "mock"

    def __init__(self, seed: int = 7, latency: float = 0.0, fail_symbols: Iterable[str] = (),
                 batch_size: int = 120):
        self.seed = seed
        self.latency = latency
        self.fail_symbols = frozenset(s.upper() for s in fail_symbols)
        self.batch_size = batch_size

    def fetch_quotes(self, symbols: Sequence[str]) -> BatchResult[QuoteData]:
        symbols = self._call(symbols)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        minute = np.array([int(now.timestamp()) // 60])
        last = _weekday_index(now.date())
        result = BatchResult(calls=1, credits=len(symbols))
        for symbol in self._known(symbols, result):
            key = _profile(self.seed, symbol)[0]
            previous, close = _closes(self.seed, symbol, last - 1, last + 1)
            # Moves every minute so repeated refreshes see changing prices.
            price = _decimal(close * (1 + 0.002 * float(_normal(key, _INTRADAY, minute)[0])))
            previous_close = _decimal(previous)
            result.items[symbol] = QuoteData(
                symbol=symbol, price=price, previous_close=previous_close, change=price - previous_close,
                as_of=now, name=symbol, exchange="MOCK", currency="USD",
            )
        return result

    def fetch_history(self, symbols: Sequence[str], *, start: date, end: date,
                      adjust: str = "splits") -> BatchResult[History]:
        check_adjust(adjust)
        symbols = self._call(symbols)
        # No bars before the series begins or after today, as with a real provider.
        first = max(_weekday_index(start - timedelta(days=1)) + 1, 0)
        stop = _weekday_index(min(end, datetime.now(UTC).date())) + 1
        result = BatchResult(calls=1, credits=len(symbols))
        for symbol in self._known(symbols, result):
            result.items[symbol] = _bars(self.seed, symbol, first, stop) if first < stop else History.empty(symbol)
        return result

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
