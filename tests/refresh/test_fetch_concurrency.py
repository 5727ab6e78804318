"""Provider batches in flight at once: overlap, the shared budget, exact accounting, failures mid-wave.

The clock is frozen on Wednesday 18 June 2025 at 20:30 UTC as in test_provider_fetch: the
stored bars are complete, so a prices refresh asks only for the eight quotes.
"""
import threading
import time

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

from market_data.credits import reserve_credits
from market_data.models import Asset, PriceBar, ProviderUsage, Quote
from market_data.providers import MockProvider, ProviderRateLimited
from refresh.models import RunStatus
from refresh.steps import flow
from refresh.steps.fetch import DAY_CREDITS_GONE
from tests.market_data.test_twelvedata import error_body
from tests.market_data.twelvedata_fake import KEY, replayed_twelvedata
from tests.refresh.test_provider_fetch import NOW, SESSIONS, SYMBOLS, minutes_of, quoted, refresh


@pytest.fixture
def market(db, time_machine, monkeypatch, settings):
    time_machine.move_to(NOW, tick=False)
    monkeypatch.setattr("refresh.steps.fetch.sleep", time_machine.shift)
    settings.MARKET_DATA_QUARANTINE_ANOMALIES = False  # made-up prices against stored closes of 100
    for symbol in SYMBOLS:
        asset = Asset.objects.create(symbol=symbol, name=symbol)
        PriceBar.objects.bulk_create([PriceBar(asset=asset, date=day, open=100, high=101, low=99, close=100)
                                      for day in SESSIONS])


class WatchedProvider(MockProvider):
    """The mock, noting how many quote calls are in flight at once and in which threads they run.

    It can also refuse the first batch holding `refuse_once` for the minute, as a 429 would.
    """

    def __init__(self, *, barrier=None, hold=0.0, refuse_once=None):
        super().__init__(batch_size=2)
        self.barrier, self.hold, self.refuse_once = barrier, hold, refuse_once
        self.in_flight = self.peak = 0
        self.threads = set()
        self.lock = threading.Lock()

    def fetch_quotes(self, symbols):
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            if self.barrier:
                self.barrier.wait()  # raises BrokenBarrierError unless all the wave's calls overlap
            time.sleep(self.hold)
            if self.refuse_once in symbols:
                self.refuse_once = None
                raise ProviderRateLimited("out of credits for the current minute", scope="minute")
            return super().fetch_quotes(symbols)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def use_provider(monkeypatch):
    def install(provider):
        monkeypatch.setattr("refresh.steps.flow.get_provider", lambda: provider)
        return provider
    return install


@pytest.fixture
def connecting_threads(monkeypatch):
    """Names of the threads that open a database connection during the test."""
    names = []
    connect = BaseDatabaseWrapper.connect

    def watched(self):
        names.append(threading.current_thread().name)
        return connect(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "connect", watched)
    return names


@pytest.fixture
def twelvedata(settings, market):
    with replayed_twelvedata(settings, credits_per_minute=0, MARKET_DATA_CONCURRENCY=4) as fake:
        yield fake


def test_a_waves_batches_are_in_flight_together_and_threads_never_touch_the_database(
        market, settings, use_provider, connecting_threads):
    settings.MARKET_DATA_CONCURRENCY = 4
    provider = use_provider(WatchedProvider(barrier=threading.Barrier(4, timeout=10)))

    run = refresh()

    assert run.status == RunStatus.SUCCESS, run.errors
    assert provider.peak == 4 and len(provider.threads) == 4
    assert threading.current_thread().name not in provider.threads
    assert not [name for name in connecting_threads if name in provider.threads]
    assert quoted() == set(SYMBOLS)
    assert (run.provider_calls, run.credits_used) == (4, 8)


def test_a_concurrency_of_one_sends_one_batch_at_a_time(market, settings, use_provider):
    settings.MARKET_DATA_CONCURRENCY = 1
    provider = use_provider(WatchedProvider(hold=0.05))

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    assert provider.peak == 1
    assert (run.provider_calls, run.credits_used) == (4, 8)


def test_results_keep_the_plans_order_when_a_refused_batch_comes_back_last(market, settings, use_provider,
                                                                           monkeypatch):
    settings.MARKET_DATA_CONCURRENCY = 4
    provider = use_provider(WatchedProvider(refuse_once="SPY"))  # the benchmark comes first in the plan
    fetched = []

    def watched_fetch(**kwargs):
        fetched.append((kwargs["plan"].quote_symbols, fetch(**kwargs)))
        return fetched[-1][1]

    fetch = flow.fetch_market_data
    monkeypatch.setattr("refresh.steps.flow.fetch_market_data", watched_fetch)

    assert refresh().status == RunStatus.SUCCESS
    [(planned, data)] = fetched
    assert planned[0] == "SPY" and provider.refuse_once is None  # SPY's batch went again the next minute
    assert [quote.symbol for quote in data.quotes] == planned


def test_a_wave_never_spends_more_than_the_minutes_credits(twelvedata, settings):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 5

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    per_minute = {}
    for call in twelvedata.calls:
        per_minute[call.at.strftime("%H:%M")] = per_minute.get(call.at.strftime("%H:%M"), 0) + len(call.symbols)
    assert per_minute == {"20:30": 5, "20:31": 3}  # batches of 3 and 2, then the last 3
    assert sorted(minutes_of(twelvedata.calls)) == ["20:30", "20:30", "20:31"]
    assert run.credits_used == 8


def test_a_batch_that_fails_for_good_gives_its_credits_back_and_the_others_are_kept(twelvedata):
    twelvedata.fail_next((400, error_body(400, "Invalid **interval** provided.")))

    run = refresh()

    failed_call = twelvedata.calls[0]  # the first call to arrive got the error
    assert len(twelvedata.calls) == 3
    assert run.status == RunStatus.PARTIAL
    assert sorted(run.failed_symbols) == sorted(failed_call.symbols)
    assert quoted() == set(SYMBOLS) - set(failed_call.symbols)
    assert run.credits_used == 8 - len(failed_call.symbols)
    # The day's counter holds only what was spent: the failed batch's credits came back.
    assert reserve_credits(wanted=800).credits == 800 - run.credits_used


def test_calls_and_credits_are_counted_exactly_including_failed_attempts(twelvedata):
    twelvedata.fail_next((502, "<html>bad gateway</html>"), (503, "down"), (200, error_body(500, "Internal error")))

    run = refresh()

    assert run.status == RunStatus.SUCCESS, run.errors
    assert quoted() == set(SYMBOLS)
    assert len(twelvedata.calls) == 6  # three batches, three of their attempts failed and were retried
    assert (run.provider_calls, run.credits_used) == (6, 8)
    usage = ProviderUsage.objects.get(day=NOW.date(), provider="twelvedata")
    assert (usage.calls, usage.credits) == (6, 8)
    assert reserve_credits(wanted=800).credits == 792


def test_a_rejected_key_mid_wave_fails_the_run_and_sends_nothing_more(twelvedata, settings):
    settings.MARKET_DATA_CONCURRENCY = 2  # waves of two batches of 3: the last 2 symbols wait for a second wave
    twelvedata.fail_next((401, error_body(401, f"**apikey** parameter is incorrect or not specified: {KEY}")))

    run = refresh()

    assert run.status == RunStatus.FAILED
    assert any("Twelve Data error 401" in error for error in run.errors)
    assert KEY not in str(run.errors)
    assert 1 <= len(twelvedata.calls) <= 2 and len(twelvedata.symbols_sent()) <= 6
    assert run.provider_calls == len(twelvedata.calls)
    assert not Quote.objects.exists()


def test_a_per_minute_429_in_a_wave_sends_only_that_batch_again_next_minute(twelvedata, settings):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    twelvedata.fail_next(twelvedata.rate_limited("minute"))

    run = refresh()

    assert run.status == RunStatus.SUCCESS, run.errors
    assert quoted() == set(SYMBOLS)
    refused = twelvedata.calls[0]
    assert minutes_of(twelvedata.calls) == ["20:30", "20:30", "20:30", "20:31"]
    assert twelvedata.calls[-1].symbols == refused.symbols
    assert (run.provider_calls, run.credits_used) == (4, 8)


def test_a_day_429_in_a_wave_keeps_what_came_back_and_lists_the_rest(twelvedata, settings):
    settings.MARKET_DATA_CONCURRENCY = 2
    twelvedata.fail_next(twelvedata.rate_limited("day"))

    run = refresh()

    assert run.status == RunStatus.PARTIAL
    refused = twelvedata.calls[0]
    assert set(refused.symbols) <= set(run.failed_symbols)
    assert set(run.failed_symbols.values()) == {DAY_CREDITS_GONE}
    assert quoted() | set(run.failed_symbols) == set(SYMBOLS) and not quoted() & set(run.failed_symbols)
    assert len(twelvedata.calls) <= 2  # the second wave is never sent
    assert run.credits_used == len(quoted())
