"""Fetching within the credit budget, used on its own: a fake provider and a reporter that notes everything.

The clock is frozen on Wednesday 18 June 2025 at 20:30 UTC, after the New York close; waiting
for credits moves it instead of sleeping. No refresh run exists in these tests.
"""

import threading
import time
from datetime import UTC, date, datetime

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

from market_data.credits import reserve_credits
from market_data.fetching import DAY_CREDITS_GONE, WAIT_TOO_LONG, HistoryRequest, RateLimitWarning, fetch_prices
from market_data.models import PriceAnomaly, ProviderUsage
from market_data.providers import MockProvider, ProviderAuthError, ProviderError, ProviderRateLimited, QuoteData

NOW = datetime(2025, 6, 18, 20, 30, tzinfo=UTC)
SYMBOLS = ["SPY", "AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "TSLA"]


class Stopped(Exception):
    """What the reporter's checkpoint raises when told to stop."""


class Reporter:
    """Notes every report; its checkpoint raises Stopped once `stop` is set."""

    def __init__(self):
        self.progress, self.usage, self.errors, self.warnings = [], [], [], []
        self.failed: dict[str, str] = {}
        self.stop = False

    def checkpoint(self):
        if self.stop:
            raise Stopped

    def report_progress(self, done, total):
        self.progress.append((done, total))

    def count_provider_use(self, *, calls, credits):
        self.usage.append((calls, credits))

    def fail_symbols(self, failures):
        self.failed.update(failures)

    def add_error(self, message):
        self.errors.append(message)

    def warn(self, warning: RateLimitWarning):
        self.warnings.append(warning)

    def totals(self) -> tuple[int, int]:
        return sum(calls for calls, _ in self.usage), sum(cost for _, cost in self.usage)


class ScriptedProvider(MockProvider):
    """The mock in batches of 2, noting each quote call.

    It can fail calls in order (`failures`), fail the first batch holding a symbol once
    (`fail_once`), hold each call, or make a wave's calls meet at a barrier.
    """

    def __init__(self, *, failures=(), fail_once=None, barrier=None, hold=0.0, on_call=None):
        super().__init__(batch_size=2)
        self.failures = list(failures)
        self.fail_once = dict(fail_once or {})
        self.barrier, self.hold, self.on_call = barrier, hold, on_call
        self.calls: list[tuple[datetime, list[str]]] = []
        self.in_flight = self.peak = 0
        self.threads = set()
        self.lock = threading.Lock()

    def fetch_quotes(self, symbols):
        with self.lock:
            self.calls.append((datetime.now(UTC), list(symbols)))
            failure = self.failures.pop(0) if self.failures else None
            for symbol in set(symbols) & set(self.fail_once):
                failure = self.fail_once.pop(symbol)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            if self.on_call:
                self.on_call(symbols)
            if self.barrier:
                self.barrier.wait()  # raises BrokenBarrierError unless all the wave's calls overlap
            time.sleep(self.hold)
            if failure:
                raise failure
            return super().fetch_quotes(symbols)
        finally:
            with self.lock:
                self.in_flight -= 1

    def minutes(self) -> list[str]:
        return [at.strftime("%H:%M") for at, _ in self.calls]


@pytest.fixture
def budget(db, time_machine, monkeypatch, settings):
    time_machine.move_to(NOW, tick=False)
    monkeypatch.setattr("market_data.fetching.sleep", time_machine.shift)
    settings.MARKET_DATA_CONCURRENCY = 4
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    settings.MARKET_DATA_CREDITS_PER_DAY = 800
    settings.MARKET_DATA_RETRY_BACKOFF_SECONDS = 0
    return settings


def fetch(provider, reporter, *, symbols=SYMBOLS, histories=(), seconds_left=600.0):
    return fetch_prices(
        provider=provider,
        quote_symbols=symbols,
        histories=list(histories),
        reporter=reporter,
        deadline=time.monotonic() + seconds_left,
        on_rate_limit=reporter.warn,
        refresh_id="r-1",
    )


def test_quotes_and_histories_come_back_in_the_requested_order_with_progress_and_usage(budget):
    budget.MARKET_DATA_CREDITS_PER_MINUTE = 0
    reporter = Reporter()
    history = HistoryRequest(symbols=["MSFT", "AAPL", "SPY"], start=date(2025, 6, 2), end=date(2025, 6, 18))

    data = fetch(ScriptedProvider(), reporter, histories=[history])

    assert [quote.symbol for quote in data.quotes] == SYMBOLS
    assert [h.symbol for h in data.histories] == ["MSFT", "AAPL", "SPY"]
    assert all(len(h) == 13 for h in data.histories)  # the weekdays of 2-18 June (the mock knows no holidays)
    assert (data.anomalies, reporter.failed, reporter.errors, reporter.warnings) == ([], {}, [], [])
    assert reporter.progress[-1] == (11, 11)
    assert reporter.totals() == (6, 11)  # four quote batches, two history batches
    usage = ProviderUsage.objects.get(day=NOW.date(), provider="mock")
    assert (usage.calls, usage.credits) == (6, 11)
    assert reserve_credits(wanted=800).credits == 800 - 11


def test_a_waves_batches_are_in_flight_together_and_threads_never_touch_the_database(budget, monkeypatch):
    connecting = []
    connect = BaseDatabaseWrapper.connect

    def watched(self):
        connecting.append(threading.current_thread().name)
        return connect(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "connect", watched)
    provider = ScriptedProvider(barrier=threading.Barrier(4, timeout=10))

    data = fetch(provider, Reporter())

    assert len(data.quotes) == 8
    assert (provider.peak, len(provider.threads)) == (4, 4)
    assert all(name.startswith("fetch-r-1") for name in provider.threads)
    assert not [name for name in connecting if name in provider.threads]


def test_a_concurrency_of_one_sends_one_batch_at_a_time(budget):
    budget.MARKET_DATA_CONCURRENCY = 1
    provider = ScriptedProvider(hold=0.05)

    data = fetch(provider, Reporter())

    assert (len(data.quotes), provider.peak) == (8, 1)


def test_results_keep_the_requested_order_when_a_refused_batch_comes_back_the_next_minute(budget):
    refused = ProviderRateLimited("out of credits for the current minute", scope="minute")
    provider = ScriptedProvider(fail_once={"SPY": refused})
    reporter = Reporter()

    data = fetch(provider, reporter)

    assert provider.minutes() == ["20:30"] * 4 + ["20:31"]
    assert provider.calls[-1][1] == ["SPY", "AAPL"]
    assert [quote.symbol for quote in data.quotes] == SYMBOLS
    assert reporter.failed == {}
    assert reporter.totals() == (5, 8)  # the refused call cost no credit


def test_the_minute_budget_spreads_waves_over_minutes(budget):
    budget.MARKET_DATA_CREDITS_PER_MINUTE = 3
    provider = ScriptedProvider()

    data = fetch(provider, Reporter())

    assert len(data.quotes) == 8
    per_minute: dict[str, int] = {}
    for at, symbols in provider.calls:
        per_minute[at.strftime("%H:%M")] = per_minute.get(at.strftime("%H:%M"), 0) + len(symbols)
    assert per_minute == {"20:30": 3, "20:31": 3, "20:32": 2}
    assert len(provider.calls) == 5  # batches of 2 and 1, 2 and 1, then 2


def test_a_wait_past_the_deadline_is_not_made_and_the_rest_is_reported(budget):
    budget.MARKET_DATA_CREDITS_PER_MINUTE = 4
    reporter = Reporter()

    data = fetch(ScriptedProvider(), reporter, seconds_left=10)

    assert [quote.symbol for quote in data.quotes] == SYMBOLS[:4]
    assert reporter.failed == dict.fromkeys(SYMBOLS[4:], WAIT_TOO_LONG)
    assert reporter.errors == [f"{WAIT_TOO_LONG} 4 symbols were not fetched."]
    [warning] = reporter.warnings
    assert warning.as_dict() == {
        "provider": "mock",
        "scope": "minute",
        "reason": WAIT_TOO_LONG,
        "resets_at": "2025-06-18T20:31:00+00:00",
        "credits_per_minute": 4,
        "credits_per_day": 800,
        "symbols_not_fetched": 4,
    }


def test_the_days_credits_gone_stops_asking_warns_first_and_lists_the_rest(budget):
    budget.MARKET_DATA_CREDITS_PER_DAY = 5
    history = HistoryRequest(symbols=["IBM"], start=date(2025, 6, 2), end=date(2025, 6, 18))
    reporter = Reporter()
    provider = ScriptedProvider()

    data = fetch(provider, reporter, histories=[history])

    assert [quote.symbol for quote in data.quotes] == SYMBOLS[:5]
    assert data.histories == []
    assert reporter.failed == dict.fromkeys([*SYMBOLS[5:], "IBM"], DAY_CREDITS_GONE)
    assert reporter.errors == [f"{DAY_CREDITS_GONE} 4 symbols were not fetched."]
    crossed, stopped = reporter.warnings
    assert (crossed.scope, crossed.reason, crossed.symbols_not_fetched) == (
        "day",
        "5 of 5 provider credits for today are used.",
        None,
    )
    assert "symbols_not_fetched" not in crossed.as_dict()
    assert (stopped.scope, stopped.resets_at, stopped.symbols_not_fetched) == (
        "day",
        datetime(2025, 6, 19, tzinfo=UTC),
        4,
    )


def test_a_batch_that_keeps_failing_is_reported_and_the_others_are_kept(budget):
    budget.MARKET_DATA_RETRY_ATTEMPTS = 2
    budget.MARKET_DATA_CONCURRENCY = 1
    budget.MARKET_DATA_CREDITS_PER_MINUTE = 0
    down = ProviderError("down", code=503, transient=True)
    reporter = Reporter()

    data = fetch(ScriptedProvider(failures=[down, down]), reporter)

    assert [quote.symbol for quote in data.quotes] == SYMBOLS[2:]
    assert reporter.failed == {"SPY": "down", "AAPL": "down"}
    assert reporter.errors == []
    assert reporter.totals() == (5, 6)  # two failed attempts cost a call each and no credit
    assert reserve_credits(wanted=800).credits == 800 - 6  # the failed batch's credits came back


def test_a_rejected_key_raises_and_nothing_more_is_sent(budget):
    budget.MARKET_DATA_CONCURRENCY = 1
    provider = ScriptedProvider(failures=[ProviderAuthError("Invalid API key")])
    reporter = Reporter()

    with pytest.raises(ProviderAuthError):
        fetch(provider, reporter)

    assert len(provider.calls) == 1
    assert reporter.totals() == (1, 0)


def test_whatever_the_checkpoint_raises_stops_the_fetch_between_waves(budget):
    budget.MARKET_DATA_CONCURRENCY = 1
    reporter = Reporter()
    provider = ScriptedProvider(on_call=lambda symbols: setattr(reporter, "stop", symbols == ["AMZN", "GOOG"]))

    with pytest.raises(Stopped):
        fetch(provider, reporter)

    assert [symbols for _, symbols in provider.calls] == [["SPY", "AAPL"], ["AMZN", "GOOG"]]
    assert reporter.totals() == (2, 4)


def test_suspicious_quotes_are_held_back_and_recorded_with_the_refresh_id(budget):
    class ZeroPrices(ScriptedProvider):
        def fetch_quotes(self, symbols):
            result = super().fetch_quotes(symbols)
            if "MSFT" in result.items:
                quote = result.items["MSFT"]
                result.items["MSFT"] = QuoteData(
                    symbol="MSFT",
                    price=quote.price * 0,
                    as_of=quote.as_of,
                    previous_close=quote.previous_close,
                    change=None,
                )
            return result

    data = fetch(ZeroPrices(), Reporter())

    assert [quote.symbol for quote in data.quotes] == [s for s in SYMBOLS if s != "MSFT"]
    assert [(a.symbol, a.kind, a.quarantined) for a in data.anomalies] == [("MSFT", "non_positive", True)]
    assert list(PriceAnomaly.objects.values_list("symbol", "refresh_id", "source")) == [("MSFT", "r-1", "mock")]
