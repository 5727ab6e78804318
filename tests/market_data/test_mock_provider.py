"""The mock provider: deterministic, realistic, sliceable made-up prices."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import time_machine

from market_data.providers import MockProvider

START, END = date(2023, 1, 1), date(2024, 12, 31)
SYMBOLS = ["AAPL", "MSFT", "SPY", "BND"]


def history(provider, symbol="AAPL", start=START, end=END):
    return provider.fetch_history([symbol], start=start, end=end).items[symbol]


def assert_same(a, b):
    for column in ("dates", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column))


def test_same_seed_gives_the_same_series_across_instances():
    assert_same(history(MockProvider(seed=3)), history(MockProvider(seed=3)))


def test_different_seeds_and_symbols_differ():
    base = history(MockProvider(seed=3))
    assert not np.array_equal(base.close, history(MockProvider(seed=4)).close)
    assert not np.array_equal(base.close, history(MockProvider(seed=3), symbol="MSFT").close)


def test_bars_are_weekdays_ascending_and_consistent():
    result = MockProvider().fetch_history(SYMBOLS, start=START, end=END)

    assert result.errors == {}
    assert set(result.items) == set(SYMBOLS)
    for bars in result.items.values():
        assert len(bars) == np.busday_count(START, END + timedelta(days=1))
        assert np.is_busday(bars.dates).all()
        assert (np.diff(bars.dates).astype(int) > 0).all()
        assert (bars.low > 0).all()
        assert (bars.low <= np.minimum(bars.open, bars.close)).all()
        assert (bars.high >= np.maximum(bars.open, bars.close)).all()
        assert (bars.volume > 0).all()
        assert bars.volume.dtype == np.int64


def test_yearly_volatility_is_realistic():
    for symbol in SYMBOLS:
        closes = history(MockProvider(), symbol=symbol, start=date(2015, 1, 1), end=date(2024, 12, 31)).close
        yearly_vol = np.diff(np.log(closes)).std() * np.sqrt(252)
        assert 0.08 < yearly_vol < 0.5


def test_a_sub_range_is_a_slice_of_a_longer_range():
    provider = MockProvider()
    long = history(provider, start=date(2020, 1, 1), end=date(2024, 12, 31))
    short = history(MockProvider(), start=date(2022, 3, 5), end=date(2022, 6, 30))

    inside = (long.dates >= np.datetime64("2022-03-05")) & (long.dates <= np.datetime64("2022-06-30"))
    for column in ("dates", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(short, column), getattr(long, column)[inside])


@time_machine.travel(datetime(2024, 6, 12, 15, 30, 42, tzinfo=UTC), tick=False)
def test_history_stops_at_today():
    bars = history(MockProvider(), start=date(2024, 6, 1), end=date(2024, 12, 31))

    assert bars.dates[-1] == np.datetime64("2024-06-12")
    assert len(history(MockProvider(), start=date(2024, 7, 1), end=date(2024, 7, 31))) == 0


def test_fail_symbols_go_to_errors():
    result = MockProvider(fail_symbols=["nikk"]).fetch_quotes(["AAPL", "NIKK"])

    assert set(result.items) == {"AAPL"}
    assert result.errors == {"NIKK": "symbol not found: NIKK"}
    assert (result.calls, result.credits) == (1, 2)


def test_quote_uses_the_latest_weekday_close():
    provider = MockProvider()
    with time_machine.travel(datetime(2024, 6, 15, 12, 0, 30, tzinfo=UTC), tick=False):  # a Saturday
        quote = provider.fetch_quotes(["AAPL"]).items["AAPL"]
    bars = history(provider, start=date(2024, 6, 13), end=date(2024, 6, 14))

    assert quote.as_of == datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
    assert quote.price is not None
    assert quote.previous_close is not None
    assert float(quote.previous_close) == pytest.approx(bars.close[0], abs=1e-4)
    assert float(quote.price) == pytest.approx(bars.close[1], rel=0.02)
    assert quote.change == quote.price - quote.previous_close
    assert quote.price > 0
    assert quote.name == "AAPL"


def test_quotes_change_from_minute_to_minute_but_not_within_one():
    provider = MockProvider()
    with time_machine.travel(datetime(2024, 6, 12, 15, 30, 5, tzinfo=UTC), tick=False):
        first = provider.fetch_quotes(SYMBOLS).items
    with time_machine.travel(datetime(2024, 6, 12, 15, 30, 55, tzinfo=UTC), tick=False):
        same_minute = provider.fetch_quotes(SYMBOLS).items
    with time_machine.travel(datetime(2024, 6, 12, 15, 31, 5, tzinfo=UTC), tick=False):
        next_minute = provider.fetch_quotes(SYMBOLS).items

    assert first == same_minute
    assert all(first[s].price != next_minute[s].price for s in SYMBOLS)


def test_too_many_symbols_is_refused():
    with pytest.raises(ValueError, match="batch size"):
        MockProvider(batch_size=2).fetch_quotes(["A", "B", "C"])


def test_history_of_a_full_batch_over_five_years():
    symbols = [f"SYM{i:03d}" for i in range(120)]

    result = MockProvider().fetch_history(symbols, start=date(2019, 1, 1), end=date(2023, 12, 31))

    assert len(result.items) == 120
    weekdays = np.busday_count(date(2019, 1, 1), date(2024, 1, 1))
    assert all(len(bars) == weekdays for bars in result.items.values())


@time_machine.travel(datetime(2024, 12, 31, 20, 0, tzinfo=UTC), tick=False)  # adjusted as of the last bar
def test_adjustments_differ_as_a_providers_do():
    provider = MockProvider()
    start, end = date(2015, 1, 1), date(2024, 12, 31)
    raw, splits, dividends, total = (
        provider.fetch_history(["KO"], start=start, end=end, adjust=adjust).items["KO"]
        for adjust in ("none", "splits", "dividends", "all")
    )
    actions = provider.corporate_actions("KO", start=start, end=end)

    assert len(actions["dividends"]) >= 35
    assert all(0 < fraction < 0.01 for _, fraction in actions["dividends"])
    # Dividend adjustment scales earlier closes down by (1 - dividend / previous close) per later
    # ex-date, so the adjusted series gains the dividend back on each ex-date.
    ratio = total.close / splits.close  # both rounded to 4 places: equal to within 1e-4
    assert (np.diff(ratio) >= -1e-4).all()
    assert ratio[-1] == pytest.approx(1, abs=1e-4)
    assert ratio[0] < 0.9
    ex_date, fraction = actions["dividends"][10]
    day = int(np.searchsorted(splits.dates, np.datetime64(ex_date)))
    assert ratio[day] / ratio[day - 1] == pytest.approx(1 / (1 - fraction), rel=1e-4)
    assert total.close[-1] / total.close[0] > splits.close[-1] / splits.close[0]
    assert np.allclose(dividends.close / raw.close, ratio, rtol=1e-4)


def test_a_split_shows_only_without_split_adjustment():
    provider = MockProvider()
    symbol, (day, ratio) = next(
        (s, actions["splits"][0])
        for s in (f"SPL{i}" for i in range(50))
        if (actions := provider.corporate_actions(s, start=date(2001, 1, 1), end=date(2024, 12, 31)))["splits"]
    )
    around = {
        adjust: provider.fetch_history(
            [symbol], start=day - timedelta(days=7), end=day + timedelta(days=7), adjust=adjust
        ).items[symbol]
        for adjust in ("none", "splits")
    }
    at = int(np.searchsorted(around["none"].dates, np.datetime64(day)))

    raw, adjusted = around["none"].close, around["splits"].close
    assert raw[at] / raw[at - 1] == pytest.approx(adjusted[at] / adjusted[at - 1] / ratio, rel=1e-3)
    assert ratio in (2, 3, 4)
    assert adjusted[at] == pytest.approx(raw[at], rel=1e-4)


def test_crypto_pays_no_dividends_and_never_splits():
    provider = MockProvider()
    actions = provider.corporate_actions("BTC/USD", start=date(2001, 1, 1), end=date(2024, 12, 31))
    raw, total = (
        provider.fetch_history(["BTC/USD"], start=START, end=END, adjust=adjust).items["BTC/USD"]
        for adjust in ("none", "all")
    )

    assert actions == {"dividends": [], "splits": []}
    np.testing.assert_array_equal(raw.close, total.close)
