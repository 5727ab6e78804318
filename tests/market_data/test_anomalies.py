"""Screening fetched prices: each kind of anomaly is found, reported and held back (or not)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from market_data.anomalies import record_anomalies, screen_histories, screen_quotes
from market_data.models import Asset, PriceAnomaly, PriceBar, Quote
from market_data.providers import History, QuoteData

# Wednesday 18 June 2025, after the close; the 19th is a holiday (Juneteenth).
NOW = datetime(2025, 6, 18, 21, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def stored(db):
    """AAPL and MSFT closed at 100 every session up to the 17th; AAPL also has a quote."""
    days = [date(2025, 6, 16), date(2025, 6, 17)]
    for symbol in ("AAPL", "MSFT"):
        asset = Asset.objects.create(symbol=symbol)
        PriceBar.objects.bulk_create(
            [PriceBar(asset=asset, date=d, open=100, high=101, low=99, close=100) for d in days]
        )
    Quote.objects.create(
        asset=Asset.objects.get(symbol="AAPL"),
        price=Decimal("100"),
        as_of=NOW - timedelta(hours=5),
        fetched_at=NOW - timedelta(hours=5),
        source="test",
    )


def quote(symbol="AAPL", price="101.5", as_of=NOW - timedelta(minutes=1), previous_close="100"):
    return QuoteData(
        symbol=symbol,
        price=None if price is None else Decimal(price),
        previous_close=Decimal(previous_close) if previous_close else None,
        change=None,
        as_of=as_of,
    )


def history(symbol, closes, start=date(2025, 6, 18)):
    closes = np.array(closes, dtype=np.float64)
    days = np.busday_offset(np.datetime64(start, "D"), np.arange(len(closes)), roll="forward")
    return History(symbol, days, closes, closes + 1, closes - 1, closes, np.ones(len(closes), dtype=np.int64))


def test_a_normal_quote_passes(stored):
    accepted, anomalies = screen_quotes(quotes=[quote()], now=NOW)

    assert [q.symbol for q in accepted] == ["AAPL"]
    assert anomalies == []


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (quote(price="0"), "non_positive"),
        (quote(price="-3.2"), "non_positive"),
        (quote(price=None), "missing_field"),
        (quote(as_of=None), "missing_field"),
        (quote(price="126"), "large_move"),
        (quote(price="74.9"), "large_move"),
        (quote(as_of=datetime(2025, 6, 9, 20, 0, tzinfo=UTC)), "stale"),
        (quote(as_of=NOW - timedelta(hours=6)), "stale"),  # older than the stored quote
    ],
)
def test_suspicious_quotes_are_quarantined(stored, bad, kind):
    good = quote(symbol="MSFT")

    accepted, anomalies = screen_quotes(quotes=[bad, good], now=NOW)

    assert [q.symbol for q in accepted] == ["MSFT"]
    assert [(a.symbol, a.kind, a.quarantined) for a in anomalies] == [("AAPL", kind, True)]
    assert anomalies[0].message


def test_the_move_is_measured_from_the_stored_close_before_the_quote_day(stored):
    accepted, anomalies = screen_quotes(quotes=[quote(price="130", previous_close="129")], now=NOW)

    assert accepted == []
    assert anomalies[0].reference == Decimal("100")
    assert "+30.0%" in anomalies[0].message


def test_without_stored_prices_the_provider_previous_close_is_the_reference(db):
    accepted, anomalies = screen_quotes(quotes=[quote(symbol="NEW", price="200", previous_close="100")], now=NOW)

    assert accepted == []
    assert anomalies[0].kind == "large_move"


def test_a_quote_a_few_sessions_old_is_not_stale_over_a_holiday_weekend(stored):
    friday_close = datetime(2025, 6, 20, 20, 0, tzinfo=UTC)
    tuesday_morning = datetime(2025, 6, 24, 12, 0, tzinfo=UTC)

    accepted, anomalies = screen_quotes(quotes=[quote(as_of=friday_close)], now=tuesday_morning)

    assert anomalies == []
    assert len(accepted) == 1


def test_with_quarantine_off_anomalies_are_reported_but_applied(stored, settings):
    settings.MARKET_DATA_QUARANTINE_ANOMALIES = False

    accepted, anomalies = screen_quotes(quotes=[quote(price="150"), quote(symbol="MSFT", price=None)], now=NOW)

    assert [q.symbol for q in accepted] == ["AAPL"]  # a missing price can never be applied
    assert [(a.kind, a.quarantined) for a in anomalies] == [("large_move", False), ("missing_field", True)]


def test_the_threshold_is_a_setting(stored, settings):
    settings.MARKET_DATA_MAX_DAILY_MOVE = 0.01

    _, anomalies = screen_quotes(quotes=[quote(price="101.5")], now=NOW)

    assert [a.kind for a in anomalies] == ["large_move"]


def test_suspicious_bars_are_dropped_and_the_rest_kept(stored):
    aapl = history("AAPL", [101, 0, 102, np.nan, 103, 180, 104])
    msft = history("MSFT", [99, 98, 97])

    accepted, anomalies = screen_histories(histories=[aapl, msft])

    kept = {h.symbol: h for h in accepted}
    # Each close is compared with the one before it: a spike is flagged going up and coming back.
    assert kept["AAPL"].close.tolist() == [101, 102, 103]
    assert kept["MSFT"].close.tolist() == [99, 98, 97]
    assert [(a.kind, a.observed_on) for a in anomalies] == [
        ("non_positive", date(2025, 6, 19)),
        ("missing_field", date(2025, 6, 23)),
        ("large_move", date(2025, 6, 25)),
        ("large_move", date(2025, 6, 26)),
    ]


def test_the_first_fetched_bar_is_compared_with_the_stored_close_before_it(stored):
    accepted, anomalies = screen_histories(histories=[history("AAPL", [140, 141])])

    assert accepted[0].close.tolist() == [141]
    assert anomalies[0].kind == "large_move"
    assert anomalies[0].observed_on == date(2025, 6, 18)


def test_anomalies_are_recorded_for_review(stored):
    _, anomalies = screen_quotes(quotes=[quote(price="0")], now=NOW)

    assert record_anomalies(anomalies=anomalies, refresh_id="ref_x", source="twelvedata") == 1

    row = PriceAnomaly.objects.get()
    assert (row.symbol, row.kind, row.value, row.quarantined, row.refresh_id) == (
        "AAPL",
        "non_positive",
        Decimal("0"),
        True,
        "ref_x",
    )
    assert anomalies[0].as_dict() == {
        "symbol": "AAPL",
        "kind": "non_positive",
        "message": row.message,
        "date": "2025-06-18",
        "value": "0",
        "reference": "100",
        "quarantined": True,
    }
