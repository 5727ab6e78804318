"""A refresh whose provider batches go out in concurrent waves: the shared budget, the run's exact
accounting, failures mid-wave. How waves overlap is tested in tests/market_data/test_fetching.py.

The clock is frozen on Wednesday 18 June 2025 at 20:30 UTC as in test_provider_fetch: the
stored bars are complete, so a prices refresh asks only for the eight quotes.
"""

import pytest

from market_data.credits import reserve_credits
from market_data.fetching import DAY_CREDITS_GONE
from market_data.models import Asset, PriceBar, ProviderUsage, Quote
from refresh.models import RunStatus
from tests.market_data.test_twelvedata import error_body
from tests.market_data.twelvedata_fake import KEY, replayed_twelvedata
from tests.refresh.test_provider_fetch import NOW, SESSIONS, SYMBOLS, minutes_of, quoted, refresh


@pytest.fixture
def market(db, time_machine, monkeypatch):
    time_machine.move_to(NOW, tick=False)
    monkeypatch.setattr("market_data.fetching.sleep", time_machine.shift)
    for symbol in SYMBOLS:
        asset = Asset.objects.create(symbol=symbol, name=symbol)
        PriceBar.objects.bulk_create(
            [PriceBar(asset=asset, date=day, open=100, high=101, low=99, close=100) for day in SESSIONS]
        )


@pytest.fixture
def twelvedata(settings, market):
    with replayed_twelvedata(settings, credits_per_minute=0, MARKET_DATA_CONCURRENCY=4) as fake:
        yield fake


def test_a_wave_never_spends_more_than_the_minutes_credits(twelvedata, settings):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 5

    run = refresh()

    assert run.status == RunStatus.SUCCESS
    per_minute: dict[str, int] = {}
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
    assert 1 <= len(twelvedata.calls) <= 2
    assert len(twelvedata.symbols_sent()) <= 6
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
    assert quoted() | set(run.failed_symbols) == set(SYMBOLS)
    assert not quoted() & set(run.failed_symbols)
    assert len(twelvedata.calls) <= 2  # the second wave is never sent
    assert run.credits_used == len(quoted())
