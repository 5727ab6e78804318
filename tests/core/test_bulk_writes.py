"""write_rows on both databases: PostgreSQL through COPY and one INSERT … SELECT, SQLite through executemany."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from core.bulk_writes import STAGING_TABLE, write_rows
from market_data.models import Asset, PriceBar
from portfolios.models import Portfolio, PortfolioMetrics, RebalanceProposal, Signal, Strategy

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)
# What the COPY text format has to escape, and JSON's own escapes.
AWKWARD = 'tab\there, new\nline, back\\slash, "quoted", \\N, é€'


def bar_columns(days, closes, volumes=None):
    return {
        "date": days,
        "open": closes,
        "high": [c + 1 for c in closes],
        "low": [c - 1 for c in closes],
        "close": closes,
        "volume": volumes or [1000] * len(days),
    }


def stored_bars(asset):
    return list(PriceBar.objects.filter(asset=asset).order_by("date").values_list("date", "close", "volume"))


def row_versions(asset):
    """Where each bar's row version lives (PostgreSQL: its ctid, new on every rewrite), by date."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT date, ctid::text FROM market_data_pricebar WHERE asset_id = %s", [asset.pk])
        return dict(cursor.fetchall())


def locked_days(asset):
    """The bars whose row a write has locked or replaced (PostgreSQL: xmax set)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT date FROM market_data_pricebar WHERE asset_id = %s AND xmax::text <> '0'", [asset.pk])
        return {day for (day,) in cursor.fetchall()}


def rows_changed(write) -> int:
    """Rows SQLite inserted or updated while `write` ran (an upsert it skipped counts none)."""
    before = connection.connection.total_changes
    write()
    return connection.connection.total_changes - before


@pytest.fixture
def asset(db):
    return Asset.objects.create(symbol="AAPL", name="Apple")


@pytest.fixture
def portfolio(db):
    owner = get_user_model().objects.create_user(username="writer", password="pw")
    return Portfolio.objects.create(owner=owner, name="Main")


@pytest.mark.django_db
def test_rows_are_inserted_with_their_constants_and_prepared_values(asset):
    days = [date(2024, 1, 2), "2024-01-03", date(2024, 1, 4)]  # dates as dates or ISO strings

    written = write_rows(
        PriceBar,
        columns=bar_columns(days, [10.1234564, 11.0, 12.5], volumes=[1, 2, 3_000_000_000_000]),
        constants={"asset": asset.pk},
        unique_fields=["asset", "date"],
        skip_unchanged=True,
    )

    assert written == 3
    assert stored_bars(asset) == [
        (date(2024, 1, 2), Decimal("10.123456"), 1),
        (date(2024, 1, 3), Decimal("11"), 2),
        (date(2024, 1, 4), Decimal("12.5"), 3_000_000_000_000),
    ]
    assert PriceBar.objects.get(asset=asset, date=date(2024, 1, 2)).high == Decimal("11.123456")


@pytest.mark.django_db
def test_an_upsert_rewrites_only_the_rows_that_differ(asset):
    days = [date(2024, 1, d) for d in (2, 3, 4, 5)]
    closes = [10.0, 11.0, 12.0, 13.0]
    write_rows(PriceBar, columns=bar_columns(days, closes), constants={"asset": asset.pk})

    def upsert():
        write_rows(
            PriceBar,
            columns=bar_columns([*days[1:], date(2024, 1, 8)], [11.0, 12.5, 13.0, 14.0]),
            constants={"asset": asset.pk},
            unique_fields=["asset", "date"],
            skip_unchanged=True,
        )

    if connection.vendor == "postgresql":
        before = row_versions(asset)
        upsert()
        after = row_versions(asset)
        moved = {day for day in before if before[day] != after[day]}
        assert moved == {date(2024, 1, 4)}  # only the changed bar has a new row version
        assert locked_days(asset) == {date(2024, 1, 4)}  # the unchanged ones are not even locked
    else:
        assert rows_changed(upsert) == 2  # the changed bar and the new one
    assert [close for _, close, _ in stored_bars(asset)] == [
        Decimal("10"),
        Decimal("11"),
        Decimal("12.5"),
        Decimal("13"),
        Decimal("14"),
    ]


@pytest.mark.django_db
def test_an_upsert_without_skip_unchanged_overwrites_every_given_row(asset):
    days = [date(2024, 1, 2), date(2024, 1, 3)]
    write_rows(PriceBar, columns=bar_columns(days, [1.0, 2.0]), constants={"asset": asset.pk})

    def upsert():
        write_rows(
            PriceBar,
            columns=bar_columns(days, [1.0, 3.0]),
            constants={"asset": asset.pk},
            unique_fields=["asset", "date"],
        )

    if connection.vendor == "postgresql":
        before = row_versions(asset)
        upsert()
        assert all(row_versions(asset)[day] != version for day, version in before.items())
    else:
        assert rows_changed(upsert) == 2
    assert [close for _, close, _ in stored_bars(asset)] == [Decimal("1"), Decimal("3")]


def signal_versions():
    """Each signal's row version by asset: its ctid on PostgreSQL (new on every rewrite), its
    calculated_at on SQLite."""
    if connection.vendor != "postgresql":
        return dict(Signal.objects.values_list("asset_id", "calculated_at"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT asset_id, ctid::text FROM portfolios_signal")
        return dict(cursor.fetchall())


@pytest.mark.django_db
def test_stamps_are_written_only_with_rows_whose_other_fields_changed(asset):
    other = Asset.objects.create(symbol="MSFT", name="Microsoft")
    later = datetime(2024, 6, 13, 9, 0, tzinfo=UTC)

    def signals(strengths, calculated_at):
        return write_rows(
            Signal,
            columns={
                "asset": [asset.pk, other.pk],
                "as_of": [date(2024, 6, 12)] * 2,
                "action": ["hold"] * 2,
                "strength": strengths,
                "trend": [None, 0.5],
                "momentum": [0.1, None],
                "reason": ["", AWKWARD],
            },
            constants={"calculated_at": calculated_at},
            unique_fields=["asset"],
            skip_unchanged=True,
            stamps=["calculated_at"],
        )

    signals([0.25, -0.5], NOW)
    before = signal_versions()
    if connection.vendor == "postgresql":
        signals([0.25, -0.75], later)
    else:
        assert rows_changed(lambda: signals([0.25, -0.75], later)) == 1  # only the changed row
    after = signal_versions()

    assert after[asset.pk] == before[asset.pk]  # unchanged: the same row version
    assert after[other.pk] != before[other.pk]
    stored = dict(Signal.objects.values_list("asset_id", "calculated_at"))
    assert stored == {asset.pk: NOW, other.pk: later}
    assert Signal.objects.get(asset=other).strength == -0.75


@pytest.mark.django_db
def test_nulls_text_floats_and_datetime_constants_round_trip(asset):
    other = Asset.objects.create(symbol="MSFT", name="Microsoft")

    write_rows(
        Signal,
        columns={
            "asset": [asset.pk, other.pk],
            "as_of": [date(2024, 6, 11), date(2024, 6, 12)],
            "action": ["buy", "hold"],
            "strength": [0.1 + 0.2, -1.0],
            "trend": [None, 1e-300],
            "momentum": [float("inf"), None],
            "reason": [AWKWARD, ""],
        },
        constants={"calculated_at": NOW},
        unique_fields=["asset"],
    )

    first, second = Signal.objects.order_by("asset__symbol")
    assert (first.reason, first.strength, first.trend, first.momentum) == (AWKWARD, 0.1 + 0.2, None, float("inf"))
    assert (second.reason, second.trend, second.momentum, second.as_of) == ("", 1e-300, None, date(2024, 6, 12))
    assert first.calculated_at == second.calculated_at == NOW


@pytest.mark.django_db
def test_json_decimal_and_date_fields_are_prepared_and_stored(portfolio):
    weights = {"AAPL": 0.25, AWKWARD: 0.75}
    reasons = {"sharpe": AWKWARD, "nested": {"list": [1, None, "x"]}}

    write_rows(
        PortfolioMetrics,
        columns={
            "portfolio": [portfolio.pk],
            "as_of": [date(2024, 6, 12)],
            "window_start": [None],
            "window_end": [date(2024, 6, 12)],
            "observations": [250],
            "periods_per_year": [None],
            "return_basis": ["total"],
            "risk_free_rate": [0.04],
            "market_value": [1234567.89],
            "cost": [Decimal("1000.10")],
            "unrealised_pnl": [-12.3456],
            "unpriced_holdings": [[{"symbol": "X", "since": "2024-06-01"}]],
            "weights": [weights],
            "null_reasons": [reasons],
            "period_starts": [{}],
            "return_1d": [None],
            "max_drawdown_peak": [None],
        },
        constants={"calculated_at": NOW},
        unique_fields=["portfolio"],
    )

    stored = PortfolioMetrics.objects.get(portfolio=portfolio)
    assert (stored.weights, stored.null_reasons, stored.period_starts) == (weights, reasons, {})
    assert stored.unpriced_holdings == [{"symbol": "X", "since": "2024-06-01"}]
    assert (stored.market_value, stored.cost, stored.unrealised_pnl) == (
        Decimal("1234567.89"),
        Decimal("1000.10"),
        Decimal("-12.35"),
    )
    assert (stored.window_start, stored.window_end, stored.return_1d, stored.max_drawdown_peak) == (
        None,
        date(2024, 6, 12),
        None,
        None,
    )


@pytest.mark.django_db
def test_plain_inserts_take_every_row_given_even_past_one_batch(portfolio, asset):
    strategy = Strategy.objects.create(portfolio=portfolio, target_weights={"AAPL": 1.0})
    count = 7

    written = write_rows(
        RebalanceProposal,
        columns={
            "strategy": [strategy.pk] * count,
            "asset": [asset.pk] * count,
            "current_weight": [i / 10 for i in range(count)],
            "target_weight": [1.0] * count,
            "quantity": [Decimal("-1.12345678")] * count,
            "price": [100.5] * count,
            "value": [i * 1.25 for i in range(count)],
        },
        constants={"status": "proposed", "created_at": NOW, "refresh_id": "run-1", "applied_at": None},
        batch_size=3,
    )
    again = write_rows(
        RebalanceProposal,
        columns={"strategy": [strategy.pk], "asset": [asset.pk], "current_weight": [0.0]}
        | {"target_weight": [1.0], "quantity": [1], "price": [1], "value": [1]},
        constants={"status": "proposed", "created_at": NOW, "refresh_id": "run-2", "applied_at": None},
    )

    assert (written, again) == (count, 1)
    stored = list(RebalanceProposal.objects.order_by("id"))
    assert len(stored) == count + 1
    assert [p.value for p in stored[:count]] == [Decimal(str(round(i * 1.25, 2))) for i in range(count)]
    assert {(p.status, p.created_at, p.applied_at, p.quantity) for p in stored[:count]} == {
        ("proposed", NOW, None, Decimal("-1.12345678"))
    }
    assert stored[-1].refresh_id == "run-2"


@pytest.mark.django_db
def test_an_upsert_of_more_rows_than_one_batch_writes_them_all(asset):
    days = [date.fromordinal(date(2023, 1, 1).toordinal() + i) for i in range(25)]
    closes = [float(i) for i in range(25)]

    write_rows(
        PriceBar,
        columns=bar_columns(days, closes),
        constants={"asset": asset.pk},
        unique_fields=["asset", "date"],
        skip_unchanged=True,
        batch_size=4,
    )
    write_rows(
        PriceBar,
        columns=bar_columns(days, [c + 0.5 for c in closes]),
        constants={"asset": asset.pk},
        unique_fields=["asset", "date"],
        skip_unchanged=True,
        batch_size=4,
    )

    assert [close for _, close, _ in stored_bars(asset)] == [Decimal(str(c + 0.5)) for c in closes]


@pytest.mark.django_db
def test_empty_columns_write_nothing(asset):
    assert write_rows(PriceBar, columns=bar_columns([], []), constants={"asset": asset.pk}) == 0
    assert not PriceBar.objects.exists()
    with pytest.raises(ValueError, match="all of one length"):
        write_rows(PriceBar, columns={"date": [date(2024, 1, 2)], "close": []}, constants={"asset": asset.pk})


@pytest.mark.django_db
def test_two_writes_in_one_transaction_each_write_only_their_own_rows(asset):
    with transaction.atomic():
        write_rows(PriceBar, columns=bar_columns([date(2024, 1, 2)], [1.0]), constants={"asset": asset.pk})
        write_rows(PriceBar, columns=bar_columns([date(2024, 1, 3)], [2.0]), constants={"asset": asset.pk})
        if connection.vendor == "postgresql":  # each write dropped its staging table
            with connection.cursor() as cursor:
                cursor.execute("SELECT to_regclass(%s)", [f"pg_temp.{STAGING_TABLE}"])
                assert cursor.fetchone() == (None,)

    assert stored_bars(asset) == [(date(2024, 1, 2), Decimal("1"), 1000), (date(2024, 1, 3), Decimal("2"), 1000)]


@pytest.mark.django_db(transaction=True)
def test_writes_commit_on_their_own_outside_a_transaction_and_roll_back_with_the_callers(asset):
    write_rows(PriceBar, columns=bar_columns([date(2024, 1, 2)], [1.0]), constants={"asset": asset.pk})

    def write_then_fail():
        with transaction.atomic():
            write_rows(PriceBar, columns=bar_columns([date(2024, 1, 3)], [2.0]), constants={"asset": asset.pk})
            raise RuntimeError("the caller fails after writing")

    with pytest.raises(RuntimeError):
        write_then_fail()

    assert stored_bars(asset) == [(date(2024, 1, 2), Decimal("1"), 1000)]
