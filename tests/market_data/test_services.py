"""Market-data writes: assets, quote upserts and bulk bar upserts."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.db import IntegrityError

from market_data import services
from market_data.models import Asset, PriceBar, Quote
from market_data.providers import History, MockProvider, QuoteData
from market_data.services import ensure_assets, store_history, store_quotes

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


def quote(symbol, price, previous_close="99.5", change="0.5"):
    return QuoteData(
        symbol=symbol,
        price=Decimal(price),
        previous_close=Decimal(previous_close),
        change=Decimal(change),
        as_of=NOW - timedelta(minutes=1),
    )


def bars(symbol, days, closes):
    closes = np.array(closes, dtype=np.float64)
    return History(
        symbol,
        np.array(days, dtype="datetime64[D]"),
        closes - 1,
        closes + 2,
        closes - 2,
        closes,
        np.arange(1, len(closes) + 1, dtype=np.int64) * 1000,
    )


@pytest.mark.django_db
def test_ensure_assets_creates_only_missing_ones():
    existing = Asset.objects.create(symbol="AAPL", name="Apple Inc")

    ids = ensure_assets(symbols=["AAPL", "MSFT", "SPY", "MSFT"])

    assert set(ids) == {"AAPL", "MSFT", "SPY"}
    assert ids["AAPL"] == existing.pk
    assert Asset.objects.count() == 3
    assert Asset.objects.get(symbol="AAPL").name == "Apple Inc"
    assert ensure_assets(symbols=["SPY"]) == {"SPY": ids["SPY"]}


@pytest.mark.django_db
def test_store_quotes_inserts_then_reports_only_changes():
    ensure_assets(symbols=["AAPL", "MSFT"])

    first = store_quotes(
        quotes=[quote("AAPL", "100.1234567"), quote("MSFT", "300"), quote("NOPE", "1")], source="mock", fetched_at=NOW
    )
    again = store_quotes(
        quotes=[quote("AAPL", "100.1234567"), quote("MSFT", "300")],
        source="mock",
        fetched_at=NOW + timedelta(minutes=5),
    )
    moved = store_quotes(
        quotes=[quote("AAPL", "100.1234567"), quote("MSFT", "301")],
        source="twelvedata",
        fetched_at=NOW + timedelta(minutes=10),
    )

    assert sorted(first) == ["AAPL", "MSFT"]
    assert again == []
    assert moved == ["MSFT"]
    assert Quote.objects.count() == 2
    aapl = Quote.objects.get(asset__symbol="AAPL")
    assert aapl.price == Decimal("100.123457")
    assert aapl.previous_close == Decimal("99.5")
    assert aapl.change == Decimal("0.5")
    assert aapl.fetched_at == NOW + timedelta(minutes=10)
    assert aapl.as_of == NOW - timedelta(minutes=1)
    assert aapl.source == "twelvedata"


@pytest.mark.django_db
def test_store_quotes_keeps_missing_previous_close_empty():
    ensure_assets(symbols=["BTC"])
    fresh = QuoteData(symbol="BTC", price=Decimal("65000.1"), previous_close=None, change=None, as_of=NOW)

    assert store_quotes(quotes=[fresh], source="mock", fetched_at=NOW) == ["BTC"]

    stored = Quote.objects.get(asset__symbol="BTC")
    assert stored.previous_close is None
    assert stored.change is None


@pytest.mark.django_db
def test_store_quotes_with_no_known_assets_writes_nothing():
    assert store_quotes(quotes=[quote("NOPE", "1")], source="mock", fetched_at=NOW) == []
    assert Quote.objects.count() == 0


@pytest.mark.django_db
def test_store_history_inserts_then_upserts_without_duplicates():
    ensure_assets(symbols=["AAPL"])
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]

    written = store_history(histories=[bars("AAPL", days, [10.1234564, 11.0, 12.5]), bars("NOPE", days, [1, 2, 3])])
    rewritten = store_history(histories=[bars("AAPL", [*days[1:], "2024-01-05"], [11.5, 12.5, 13.0])], batch_size=2)

    assert (written, rewritten) == (3, 3)
    stored = list(PriceBar.objects.filter(asset__symbol="AAPL").order_by("date"))
    assert [b.date for b in stored] == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)]
    assert [b.close for b in stored] == [Decimal("10.123456"), Decimal("11.5"), Decimal("12.5"), Decimal("13")]
    first = stored[0]
    assert (first.open, first.high, first.low, first.volume) == (
        Decimal("9.123456"),
        Decimal("12.123456"),
        Decimal("8.123456"),
        1000,
    )


@pytest.mark.django_db
def test_store_history_round_trips_mock_prices():
    ensure_assets(symbols=["SPY"])
    history = MockProvider().fetch_history(["SPY"], start=date(2023, 1, 1), end=date(2023, 12, 31)).items["SPY"]

    assert store_history(histories=[history], batch_size=100) == len(history)

    rows = PriceBar.objects.filter(asset__symbol="SPY").order_by("date").values_list("date", "close", "volume")
    dates, closes, volumes = zip(*rows, strict=True)
    assert list(dates) == history.dates.tolist()
    np.testing.assert_allclose([float(c) for c in closes], history.close, rtol=0, atol=1e-6)
    assert list(volumes) == history.volume.tolist()


@pytest.mark.django_db
def test_store_history_skips_bars_without_a_price():
    ensure_assets(symbols=["AAPL"])

    written = store_history(histories=[bars("AAPL", ["2024-01-02", "2024-01-03"], [np.nan, 5.0])])

    assert written == 1
    assert list(PriceBar.objects.values_list("date", flat=True)) == [date(2024, 1, 3)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_history_leaves_no_half_written_rows_and_the_others_keep_theirs(monkeypatch):
    """GONE's asset is deleted while its history is fetched: its bars break the batch's foreign
    key when it commits. Written again one by one, AAPL's bars are kept and GONE's raises with
    none of its rows left, though SQLite wrote them in two statements (batch_size 2)."""
    ids = ensure_assets(symbols=["AAPL", "NVDA"])
    store_history(histories=[bars("AAPL", ["2024-01-01"], [1])])
    monkeypatch.setattr(services, "_asset_ids", lambda symbols: {**ids, "GONE": max(ids.values()) + 100})
    days = ["2024-01-02", "2024-01-03", "2024-01-04"]

    with pytest.raises(IntegrityError):
        store_history(
            histories=[bars("AAPL", days, [1, 2, 3]), bars("GONE", days, [1, 2, 3]), bars("NVDA", days, [4, 5, 6])],
            batch_size=2,
        )

    stored = PriceBar.objects.order_by("asset__symbol", "date").values_list("asset__symbol", "date")
    assert [(symbol, day.isoformat()) for symbol, day in stored] == [
        ("AAPL", "2024-01-01"),
        *[("AAPL", day) for day in days],
    ]


@pytest.mark.django_db
def test_histories_are_written_in_batches_of_whole_histories(monkeypatch):
    """Batches of about BARS_PER_WRITE bars, never splitting a history: three histories of two
    bars with a limit of three make two batches, and every bar lands once."""
    monkeypatch.setattr(services, "BARS_PER_WRITE", 3)
    ensure_assets(symbols=["AAPL", "MSFT", "NVDA"])
    writes = []
    original = services._write_bars

    def counting(histories, ids, **kwargs):
        if histories:
            writes.append([history.symbol for history in histories])
        return original(histories, ids, **kwargs)

    monkeypatch.setattr(services, "_write_bars", counting)
    days = ["2024-01-02", "2024-01-03"]

    written = store_history(histories=[bars(symbol, days, [1, 2]) for symbol in ("AAPL", "MSFT", "NVDA")])

    assert written == 6
    assert writes == [["AAPL", "MSFT"], ["NVDA"]]
    assert PriceBar.objects.count() == 6


@pytest.mark.django_db
def test_bars_stored_meanwhile_of_an_asset_that_had_none_are_upserted_not_duplicated():
    """An asset without bars gets its history inserted with nothing to compare; when bars of it
    were stored since the call began (here: the same symbol given twice), they are upserted."""
    ensure_assets(symbols=["AAPL"])
    days = ["2024-01-02", "2024-01-03"]

    written = store_history(
        histories=[bars("AAPL", days, [10.0, 11.0]), bars("AAPL", [*days, "2024-01-04"], [10, 12, 13])]
    )
    # Given twice again once it has bars: each upserted in turn, the last one standing.
    written += store_history(histories=[bars("AAPL", days, [1, 2]), bars("AAPL", days, [10, 12])])

    assert written == 9
    stored = PriceBar.objects.filter(asset__symbol="AAPL").order_by("date").values_list("date", "close")
    assert list(stored) == [
        (date(2024, 1, 2), Decimal("10")),
        (date(2024, 1, 3), Decimal("12")),
        (date(2024, 1, 4), Decimal("13")),
    ]
