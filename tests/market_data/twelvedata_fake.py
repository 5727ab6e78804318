"""A stand-in for Twelve Data's /quote and /time_series, answering in its shapes via `responses`.

It answers every symbol it is asked for (flat for one, keyed for several), remembers each
call with the time it came in, and can be told to fail: whole responses queued in order,
or one symbol's entry.
"""

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import responses
from django.utils import timezone

from tests.market_data.test_twelvedata import error_body, quote_body, series_body

if TYPE_CHECKING:
    from collections.abc import Callable

KEY = "td-test-key-0123456789"
BASE = "https://td.test"


@dataclass(frozen=True)
class Call:
    path: str
    symbols: list[str]
    params: dict[str, str]
    at: datetime


class FakeTwelveData:
    def __init__(self, rsps: responses.RequestsMock, *, close: str = "101.00000"):
        self.calls: list[Call] = []
        self.close = close
        self.failures: list[tuple[int, object] | Exception] = []  # answered in order, one per call
        self.symbol_entries: dict[str, dict] = {}  # symbol -> the entry to answer with
        self.bars: dict[str, list[dict]] = {}  # symbol -> /time_series values
        self.headers: dict[str, str] = {}  # sent with every successful answer
        self.on_call: Callable[[Call], None] | None = None
        self._lock = threading.Lock()
        rsps.add_callback(responses.GET, f"{BASE}/quote", callback=lambda r: self._answer(r, self._quote))
        rsps.add_callback(responses.GET, f"{BASE}/time_series", callback=lambda r: self._answer(r, self._series))

    # --- what to answer -------------------------------------------------------------
    def fail_next(self, *failures: tuple[int, object] | Exception) -> None:
        self.failures.extend(failures)

    def rate_limited(self, scope: str) -> tuple[int, dict]:
        period = "current minute" if scope == "minute" else "day"
        return 429, error_body(429, f"You have run out of API credits for the {period}. Wait and try again.")

    def _quote(self, symbol: str) -> dict:
        return self.symbol_entries.get(symbol) or quote_body(
            symbol, close=self.close, previous_close="100.00000", change=None, timestamp=int(timezone.now().timestamp())
        )

    def _series(self, symbol: str) -> dict:
        return self.symbol_entries.get(symbol) or series_body(symbol, self.bars.get(symbol, []))

    # --- answering ------------------------------------------------------------------
    def _answer(self, request, entry_for):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        call = Call(urlparse(request.url).path, query["symbol"].split(","), query, timezone.now())
        with self._lock:
            self.calls.append(call)
            failure = self.failures.pop(0) if self.failures else None
        if self.on_call:
            self.on_call(call)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            status, body = failure
            return status, {}, body if isinstance(body, str) else json.dumps(body)
        entries = {symbol: entry_for(symbol) for symbol in call.symbols}
        body = entries[call.symbols[0]] if len(call.symbols) == 1 else entries
        return 200, dict(self.headers), json.dumps(body)

    # --- what happened --------------------------------------------------------------
    def symbols_sent(self, path: str = "/quote") -> list[str]:
        return [symbol for call in self.calls if call.path == path for symbol in call.symbols]


@contextmanager
def replayed_twelvedata(
    settings, *, batch_size: int = 3, credits_per_minute: int, credits_per_day: int = 800, **more_settings
):
    """Point the service at the fake with the given plan; yields the FakeTwelveData."""
    settings.MARKET_DATA_PROVIDER = "twelvedata"
    settings.TWELVEDATA_API_KEY = KEY
    settings.TWELVEDATA_BASE_URL = BASE
    settings.TWELVEDATA_BATCH_SIZE = batch_size
    settings.MARKET_DATA_CREDITS_PER_MINUTE = credits_per_minute
    settings.MARKET_DATA_CREDITS_PER_DAY = credits_per_day
    for name, value in more_settings.items():
        setattr(settings, name, value)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwelveData(rsps)
