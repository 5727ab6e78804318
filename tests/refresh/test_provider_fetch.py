"""Refreshes against a replayed Twelve Data: partial failures, retries, rate limits, anomalies, smart mode.

The clock is frozen on Wednesday 18 June 2025 at 20:30 UTC, half an hour after the New York
close; waiting for credits moves it instead of sleeping.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model

from market_data.fetching import DAY_CREDITS_GONE
from market_data.models import Asset, PriceAnomaly, PriceBar, Quote
from market_data.selectors import provider_usage_per_day
from portfolios.models import Holding, Portfolio
from refresh.models import RefreshStep, RunSource, RunStatus
from refresh.services.events import DATA_ANOMALY, RATELIMIT_WARNING, refresh_event
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh
from tests.market_data.test_twelvedata import error_body, quote_body
from tests.market_data.twelvedata_fake import KEY, replayed_twelvedata

NOW = datetime(2025, 6, 18, 20, 30, tzinfo=UTC)
SYMBOLS = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "SPY", "TSLA"]
SESSIONS = [date(2025, 6, 16), date(2025, 6, 17), date(2025, 6, 18)]


@pytest.fixture
def clock(time_machine, monkeypatch):
    time_machine.move_to(NOW, tick=False)
    monkeypatch.setattr("market_data.fetching.sleep", time_machine.shift)
    return time_machine


@pytest.fixture
def market(db, clock):
    """Eight assets whose bars (close 100) are complete up to today's session: only quotes are due."""
    for symbol in SYMBOLS:
        asset = Asset.objects.create(symbol=symbol, name=symbol)
        PriceBar.objects.bulk_create(
            [PriceBar(asset=asset, date=day, open=100, high=101, low=99, close=100) for day in SESSIONS]
        )


@pytest.fixture
def twelvedata(settings, market):
    with replayed_twelvedata(settings, credits_per_minute=8) as fake:
        yield fake


@pytest.fixture
def one_call_at_a_time(settings):
    """For tests that script the provider's answers call by call (concurrency: test_fetch_concurrency)."""
    settings.MARKET_DATA_CONCURRENCY = 1


@pytest.fixture
def events():
    seen = []

    def receiver(sender, event_type, payload, **kwargs):
        seen.append((event_type, payload))

    refresh_event.connect(receiver, weak=False)
    yield seen
    refresh_event.disconnect(receiver)


def refresh(kind="prices", mode="incremental", **kwargs):
    run, created = request_refresh(
        kind=kind, requested_by=None, source=RunSource.COMMAND, mode=mode, enqueue=False, **kwargs
    )
    assert created
    return execute_run_in_process(run=run)


def quoted():
    return set(Quote.objects.values_list("asset__symbol", flat=True))


def minutes_of(calls):
    return [call.at.strftime("%H:%M") for call in calls]


def test_a_batch_with_one_bad_symbol_keeps_the_others_and_ends_partial(twelvedata):
    twelvedata.symbol_entries["NVDA"] = error_body(400, "**symbol** not found: NVDA. Please specify it correctly.")

    run = refresh()

    assert run.status == RunStatus.PARTIAL
    assert list(run.failed_symbols) == ["NVDA"]
    assert "not found" in run.failed_symbols["NVDA"]
    assert quoted() == set(SYMBOLS) - {"NVDA"}
    assert (run.provider_calls, run.credits_used) == (3, 8)


def test_server_errors_twice_then_success_are_retried_and_counted(twelvedata):
    twelvedata.fail_next((502, "<html>bad gateway</html>"), (200, error_body(500, "Internal error")))

    run = refresh()

    assert run.status == RunStatus.SUCCESS, run.errors
    assert quoted() == set(SYMBOLS)
    assert len(twelvedata.calls) == 5  # the first batch three times, then two more batches
    assert (run.provider_calls, run.credits_used) == (5, 8)


def test_a_rejected_key_fails_the_run_at_once_with_a_clear_message(twelvedata, one_call_at_a_time):
    twelvedata.fail_next((401, error_body(401, f"**apikey** parameter is incorrect or not specified: {KEY}")))

    run = refresh()

    assert run.status == RunStatus.FAILED
    assert any("Twelve Data error 401" in error for error in run.errors)
    assert KEY not in str(run.errors)
    assert len(twelvedata.calls) == 1
    assert run.provider_calls == 1
    assert not Quote.objects.exists()


def test_a_server_error_that_lasts_fails_only_its_batch(twelvedata, one_call_at_a_time, settings):
    settings.MARKET_DATA_RETRY_ATTEMPTS = 2
    twelvedata.fail_next((503, "down"), (503, "down"))

    run = refresh()

    assert run.status == RunStatus.PARTIAL
    first_batch = twelvedata.calls[0].symbols
    assert sorted(run.failed_symbols) == sorted(first_batch)
    assert quoted() == set(SYMBOLS) - set(first_batch)


def test_a_per_minute_429_waits_for_the_next_minute_and_finishes(twelvedata, one_call_at_a_time):
    twelvedata.fail_next(twelvedata.rate_limited("minute"))

    run = refresh()

    assert run.status == RunStatus.SUCCESS, run.errors
    assert quoted() == set(SYMBOLS)
    assert minutes_of(twelvedata.calls) == ["20:30", "20:31", "20:31", "20:31"]
    assert run.provider_calls == 4
    assert run.credits_used == 8


def test_a_per_day_429_stops_the_run_and_every_other_until_midnight(twelvedata, one_call_at_a_time, events):
    def refuse_the_second_call(call):
        if len(twelvedata.calls) == 1:
            twelvedata.fail_next(twelvedata.rate_limited("day"))

    twelvedata.on_call = refuse_the_second_call

    run = refresh()

    first_batch = twelvedata.calls[0].symbols
    assert run.status == RunStatus.PARTIAL
    assert quoted() == set(first_batch)
    assert run.failed_symbols == dict.fromkeys(set(SYMBOLS) - set(first_batch), DAY_CREDITS_GONE)
    assert any("until midnight UTC" in error for error in run.errors)
    [warning] = [payload for kind, payload in events if kind == RATELIMIT_WARNING]
    assert (warning["scope"], warning["resets_at"]) == ("day", "2025-06-19T00:00:00+00:00")

    calls_so_far = len(twelvedata.calls)
    later = refresh(symbols=["AAPL"])
    assert len(twelvedata.calls) == calls_so_far  # no worker asks again today
    assert later.failed_symbols == {"AAPL": DAY_CREDITS_GONE}
    assert later.status == RunStatus.PARTIAL  # cut short by the day's credits, with the reason


def test_a_day_budget_used_up_fetches_the_most_held_first_and_ends_partial(
    twelvedata, one_call_at_a_time, settings, events
):
    settings.MARKET_DATA_CREDITS_PER_DAY = 5
    owner = get_user_model().objects.create(username="holder")
    portfolio = Portfolio.objects.create(owner=owner, name="p")
    for symbol, quantity in [("TSLA", 500), ("AAPL", 10)]:
        Holding.objects.create(
            portfolio=portfolio, asset=Asset.objects.get(symbol=symbol), quantity=quantity, cost_basis=1
        )

    run = refresh()

    assert run.status == RunStatus.PARTIAL
    assert twelvedata.symbols_sent() == ["SPY", "TSLA", "AAPL", "AMZN", "GOOG"]
    assert run.failed_symbols == dict.fromkeys(["META", "MSFT", "NVDA"], DAY_CREDITS_GONE)
    assert any("3 symbols were not fetched" in error for error in run.errors)
    assert [payload["scope"] for kind, payload in events if kind == RATELIMIT_WARNING] == ["day", "day"]


def test_the_minute_budget_spreads_a_refresh_over_minutes(twelvedata, settings):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 3

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    assert minutes_of(twelvedata.calls) == ["20:30", "20:31", "20:32"]
    assert quoted() == set(SYMBOLS)


def test_a_provider_saying_no_credits_are_left_closes_the_minute(twelvedata, one_call_at_a_time):
    twelvedata.headers = {"api-credits-left": "0"}

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    assert minutes_of(twelvedata.calls) == ["20:30", "20:31", "20:32"]


def test_a_wait_past_the_time_limit_is_not_made(twelvedata, settings, events):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 3
    settings.REFRESH_TIME_LIMIT_SECONDS = {**settings.REFRESH_TIME_LIMIT_SECONDS, "prices": 30}

    run = refresh()

    assert run.status == RunStatus.PARTIAL
    assert len(twelvedata.calls) == 1
    assert len(run.failed_symbols) == 5
    assert any("would pass the run's time limit" in error for error in run.errors)
    assert [payload["scope"] for kind, payload in events if kind == RATELIMIT_WARNING] == ["minute"]


def test_suspicious_quotes_are_quarantined_flagged_and_announced(twelvedata, events):
    twelvedata.symbol_entries["AAPL"] = quote_body("AAPL", close="0.00000", timestamp=int(NOW.timestamp()))
    twelvedata.symbol_entries["MSFT"] = quote_body("MSFT", close="250.00000", timestamp=int(NOW.timestamp()))

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    assert quoted() == set(SYMBOLS) - {"AAPL", "MSFT"}
    assert sorted((a["symbol"], a["kind"], a["quarantined"]) for a in run.anomalies) == [
        ("AAPL", "non_positive", True),
        ("MSFT", "large_move", True),
    ]
    run.refresh_from_db()
    assert len(run.anomalies) == 2
    assert set(PriceAnomaly.objects.filter(refresh_id=run.refresh_id).values_list("symbol", flat=True)) == {
        "AAPL",
        "MSFT",
    }
    [announced] = [payload for kind, payload in events if kind == DATA_ANOMALY]
    assert (announced["refresh_id"], announced["count"], announced["quarantined"]) == (run.refresh_id, 2, 2)


def test_smart_mode_asks_only_when_a_new_price_can_exist(twelvedata, clock):
    assert refresh().status == RunStatus.SUCCESS
    calls = len(twelvedata.calls)

    right_after = refresh(mode="smart")
    clock.move_to(datetime(2025, 6, 19, 18, 0, tzinfo=UTC), tick=False)  # Juneteenth: the market is shut
    holiday = refresh(mode="smart")
    assert len(twelvedata.calls) == calls
    assert right_after.provider_calls == holiday.provider_calls == 0
    assert RefreshStep.objects.get(run=holiday, name="Fetching data").status == "skipped"

    clock.move_to(datetime(2025, 6, 20, 14, 0, tzinfo=UTC), tick=False)  # Friday, trading
    trading = refresh(mode="smart")
    assert trading.status == RunStatus.SUCCESS
    assert sorted(twelvedata.symbols_sent()[8:]) == SYMBOLS
    assert twelvedata.symbols_sent("/time_series") == []  # Friday's bar is not final yet


def test_full_mode_fetches_history_in_ranges_of_at_most_5000_bars_and_the_benchmark_with_dividends(
    twelvedata, settings
):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 0
    settings.REFRESH_HISTORY_YEARS = 30

    run = refresh(mode="full")

    assert run.status == RunStatus.SUCCESS, run.errors
    series = [call for call in twelvedata.calls if call.path == "/time_series"]
    spans: dict[str, list[tuple[date, date]]] = {}
    for call in series:
        start, end = date.fromisoformat(call.params["start_date"]), date.fromisoformat(call.params["end_date"])
        assert (end - start).days + 1 <= 5000
        assert call.params["outputsize"] == "5000"
        assert call.params["adjust"] == "all"  # total returns for holdings and benchmark alike
        for symbol in call.symbols:
            spans.setdefault(symbol, []).append((start, end))
    for ranges in spans.values():
        ranges.sort()
        assert ranges[0][0] == date(1995, 6, 18)
        assert ranges[-1][1] == date(2025, 6, 18)
        assert all(b[0] - a[1] == timedelta(days=1) for a, b in pairwise(ranges))
    assert sorted(spans) == SYMBOLS
    assert len(spans["SPY"]) == 3


def test_provider_use_is_counted_per_run_and_per_day(twelvedata):
    first = refresh()
    second = refresh(symbols=["AAPL", "MSFT"])

    assert (first.provider_calls, first.credits_used) == (3, 8)
    assert (second.provider_calls, second.credits_used) == (1, 2)
    assert provider_usage_per_day(start=NOW.date(), end=NOW.date()) == [
        {"day": NOW.date(), "provider": "twelvedata", "calls": 4, "credits": 10}
    ]
    assert Decimal(Quote.objects.get(asset__symbol="AAPL").price) == Decimal("101")
