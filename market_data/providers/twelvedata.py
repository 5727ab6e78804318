"""Twelve Data client: one request per batch of quotes or daily history, errors classified."""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from http import HTTPStatus
from typing import Any, TypeVar

import requests

from . import twelvedata_parsing as parsing
from .base import (
    BatchResult,
    History,
    MarketDataProvider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    QuoteData,
    check_adjust,
)

logger = logging.getLogger(__name__)
Item = TypeVar("Item", QuoteData, History)


class TwelveDataClient(MarketDataProvider):
    """Talks to Twelve Data; no retries here, `transient` tells the caller when to.

    A run sends batches from several threads at once and requests.Session is not thread-safe,
    so each thread gets a session of its own, which keeps reusing that thread's connections.
    Retries and the credit budget wrap every provider alike (market_data.retries and
    market_data.credits), so the mock and Twelve Data are driven the same way. The credit
    headers are kept as the last answer, from whichever thread, said them.
    """

    name = "twelvedata"

    def __init__(
        self,
        api_key: str,
        base_url: str,
        batch_size: int = 120,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ):
        if not api_key:
            raise ValueError("a Twelve Data API key is required")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.timeout = (connect_timeout, read_timeout)
        self._sessions = threading.local()
        self.credits_used_header: int | None = None
        self.credits_left_header: int | None = None

    @property
    def session(self) -> requests.Session:
        """This thread's session, made on its first request."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def __repr__(self) -> str:
        return f"TwelveDataClient(base_url={self.base_url!r}, batch_size={self.batch_size})"

    def fetch_quotes(self, symbols: Sequence[str]) -> BatchResult[QuoteData]:
        symbols = self._checked_batch(symbols)
        params = {"interval": "1day", "timezone": "UTC"}
        return self._fetch("/quote", symbols, params, parsing.parse_quote, "quote")

    def fetch_history(
        self, symbols: Sequence[str], *, start: date, end: date, adjust: str = "splits"
    ) -> BatchResult[History]:
        symbols = self._checked_batch(symbols)
        params = {
            "interval": "1day",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "order": "asc",
            "outputsize": 5000,
            "adjust": check_adjust(adjust),
        }
        return self._fetch("/time_series", symbols, params, parsing.parse_history, "history", no_data=History.empty)

    def _fetch(
        self,
        path: str,
        symbols: list[str],
        params: dict[str, Any],
        parse: Callable[[str, Mapping[str, Any]], Item],
        what: str,
        *,
        no_data: Callable[[str], Item] | None = None,
    ) -> BatchResult[Item]:
        """One request for the whole batch; each symbol's entry is parsed or becomes an error.

        With `no_data`, a "no data is available" error becomes the item it makes (an empty history).
        """
        if not symbols:
            return BatchResult()
        payload, credits, left = self._get(path, {"symbol": ",".join(symbols), **params}, symbols)
        result: BatchResult[Item] = BatchResult(calls=1, credits=credits, credits_left=left)
        for symbol, entry in parsing.per_symbol(payload, symbols):
            if no_data is not None and parsing.is_error(entry) and parsing.is_no_data(entry):
                result.items[symbol] = no_data(symbol)
            elif parsing.is_error(entry):
                result.errors[symbol] = parsing.error_message(entry)
            elif not isinstance(entry, Mapping):
                result.errors[symbol] = f"no {what} returned"
            else:
                try:
                    result.items[symbol] = parse(symbol, entry)
                except parsing.MALFORMED as exc:
                    result.errors[symbol] = self._scrub(f"malformed {what}: {type(exc).__name__}: {exc}")
        return result

    def _get(self, path: str, params: dict[str, Any], symbols: list[str]) -> tuple[object, int, int | None]:
        """The decoded body, the credits it cost and those left; whole-request failures raise ProviderError."""
        try:
            response = self.session.get(
                self.base_url + path,
                params=params,
                timeout=self.timeout,
                headers={"Authorization": f"apikey {self._api_key}", "Accept": "application/json"},
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # `from None`: the chained exception would carry the URL and connection details.
            raise ProviderError(
                self._scrub(f"Twelve Data unreachable on {path}: {type(exc).__name__}: {exc}"), transient=True
            ) from None
        except requests.RequestException as exc:
            raise ProviderError(
                self._scrub(f"Twelve Data request to {path} failed: {type(exc).__name__}: {exc}"), transient=False
            ) from None
        used, left = self._read_credit_headers(response)
        credits = used if used is not None else len(symbols)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        failed = response.status_code >= HTTPStatus.BAD_REQUEST or parsing.is_error(payload)
        if not failed and payload is None:
            raise ProviderError(f"Twelve Data sent a body that is not JSON on {path}", transient=True)
        if failed:
            body = payload if isinstance(payload, Mapping) else {}
            code = response.status_code if response.status_code >= HTTPStatus.BAD_REQUEST else _int(body.get("code"))
            message = parsing.error_message(body) if body else f"HTTP {response.status_code}"
            if len(symbols) == 1 and parsing.is_symbol_error(code, message):
                return {"status": "error", "code": code, "message": message}, credits, left
            raise self._error(code, f"Twelve Data error {code} on {path}: {message}")
        return payload, credits, left

    def _error(self, code: int | None, message: str) -> ProviderError:
        message = self._scrub(message)
        logger.warning("%s", message)
        if code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            return ProviderAuthError(message, code=code)
        if code == HTTPStatus.TOO_MANY_REQUESTS:
            return ProviderRateLimited(message, scope=parsing.rate_limit_scope(message))
        return ProviderError(
            message, code=code, transient=code is not None and code >= HTTPStatus.INTERNAL_SERVER_ERROR
        )

    def _read_credit_headers(self, response: requests.Response) -> tuple[int | None, int | None]:
        """Twelve Data's undocumented credit headers (used, left), each None when not sent."""
        used = _int(response.headers.get("api-credits-used"))
        left = _int(response.headers.get("api-credits-left"))
        if used is not None:
            self.credits_used_header = used
        if left is not None:
            self.credits_left_header = left
        return used, left

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***")


def _int(value: str | float | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
