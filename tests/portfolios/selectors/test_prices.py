"""Reading price matrices: histories on shared calendars, each asset's recent closes, latest prices."""

from datetime import date

import numpy as np
import pytest

from portfolios.selectors.prices import (
    load_latest_prices,
    load_price_history,
    load_recent_closes,
    load_recent_price_history,
)
from portfolios.selectors.shared import shared_reads

D1, D2, D3, D4 = date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)


@pytest.fixture
def assets(make_asset, make_quote):
    a = make_asset("AAA", [10, 11, 12], dates=[D1, D2, D3])
    b = make_asset("BBB", [20, 22], dates=[D1, D3])  # no bar on D2
    c = make_asset("CCC", [30, 31], dates=[D2, D3])  # listed on D2
    make_quote(a, 13, D4)  # newer than the last bar: an extra day
    make_quote(b, 99, D3)  # same day as the last bar: the bar wins
    return a, b, c


@pytest.mark.django_db
def test_price_history_forward_fills_marks_trading_days_and_appends_newer_quotes(assets, make_asset):
    a, b, c = assets
    never = make_asset("NEVER")

    history = load_price_history(asset_ids=[c.id, a.id, b.id, never.id])

    assert list(history.dates) == list(np.array([D1, D2, D3, D4], dtype="datetime64[D]"))
    assert history.closes[0] == pytest.approx([np.nan, 30, 31, 31], nan_ok=True)
    assert history.closes[1] == pytest.approx([10, 11, 12, 13])
    assert history.closes[2] == pytest.approx([20, 20, 22, 22])
    # Carried-forward closes are not trading days: BBB did not trade on D2, CCC not on D1 or D4.
    assert history.traded.tolist() == [
        [False, True, True, False],
        [True, True, True, True],
        [True, False, True, False],
        [False, False, False, False],
    ]
    assert list(history.last_days[:3]) == list(np.array([D3, D4, D3], dtype="datetime64[D]"))
    assert np.isnat(history.last_days[3])
    assert history.priced.tolist() == [True, True, True, False]


@pytest.mark.django_db
def test_shared_reads_read_a_history_once_and_hand_it_out_read_only(assets, django_assert_num_queries):
    a, b, _ = assets
    with shared_reads():
        history = load_recent_price_history(asset_ids=[a.id, b.id], days=30)
        with django_assert_num_queries(0):
            again = load_recent_price_history(asset_ids=[a.id, b.id], days=30)
        assert again is history
        with pytest.raises(ValueError, match="read-only"):
            history.closes[0, 0] = 1.0  # shared by every reader: nobody may change it
        other = load_recent_price_history(asset_ids=[a.id], days=30)  # other assets: read anew
        assert other.closes.shape[0] == 1
    # Outside the block every call reads the database again, into arrays of its own.
    fresh = load_recent_price_history(asset_ids=[a.id, b.id], days=30)
    assert fresh.closes is not history.closes
    assert np.array_equal(fresh.closes, history.closes, equal_nan=True)
    assert np.array_equal(fresh.dates, history.dates)
    assert np.array_equal(fresh.traded, history.traded)


@pytest.mark.django_db
def test_price_history_from_start_carries_the_earlier_close_in(assets):
    a, b, _ = assets

    history = load_price_history(asset_ids=[a.id, b.id], start=D2)

    assert history.dates[0] == np.datetime64(D2)
    assert history.closes[1] == pytest.approx([20, 22, 22])  # D1's close, carried into D2
    assert history.traded[1].tolist() == [False, True, False]


@pytest.mark.django_db
def test_recent_closes_are_each_assets_own_bars(assets, make_asset):
    a, b, c = assets
    empty = make_asset("EEE")

    last_dates, closes = load_recent_closes(asset_ids=[a.id, b.id, c.id, empty.id], count=3)

    assert closes[0] == pytest.approx([11, 12, 13])  # two bars and the newer quote
    assert closes[1] == pytest.approx([np.nan, 20, 22], nan_ok=True)
    assert closes[2] == pytest.approx([np.nan, 30, 31], nan_ok=True)
    assert np.isnan(closes[3]).all()
    assert last_dates[0] == np.datetime64(D4)
    assert last_dates[1] == np.datetime64(D3)
    assert np.isnat(last_dates[3])
    assert load_latest_prices(asset_ids=[b.id, a.id, empty.id]) == pytest.approx([22, 13, np.nan], nan_ok=True)
