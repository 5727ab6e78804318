"""Factories for portfolios tests: assets with daily bars, portfolios with holdings."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from market_data.models import Asset, PriceBar, Quote
from portfolios.models import Holding, Portfolio, Strategy


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="alice", password="pw")


@pytest.fixture
def make_asset(db):
    """make_asset("AAA", closes=[...], start=date, dates=[...]) creates the asset and one bar per close."""

    def make(symbol, closes=(), *, start=date(2025, 1, 1), dates=None):
        asset = Asset.objects.create(symbol=symbol, name=symbol)
        days = dates or [start + timedelta(days=i) for i in range(len(closes))]
        PriceBar.objects.bulk_create(
            [
                PriceBar(
                    asset=asset,
                    date=day,
                    open=Decimal(str(close)),
                    high=Decimal(str(close)),
                    low=Decimal(str(close)),
                    close=Decimal(str(close)),
                    volume=1000,
                )
                for day, close in zip(days, closes, strict=True)
            ]
        )
        return asset

    return make


@pytest.fixture
def make_quote(db):
    """make_quote(asset, price, day) stores the asset's latest quote as of noon UTC on that day."""

    def make(asset, price, day):
        as_of = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        return Quote.objects.create(
            asset=asset, price=Decimal(str(price)), as_of=as_of, fetched_at=as_of, source="test"
        )

    return make


@pytest.fixture
def make_portfolio(user):
    """make_portfolio({asset: (quantity, cost_basis)}, name=..., targets={symbol: weight}) with holdings."""

    def make(positions=None, *, name="Main", targets=None, owner=None, **strategy_fields):
        portfolio = Portfolio.objects.create(owner=owner or user, name=name)
        for asset, (quantity, cost) in (positions or {}).items():
            Holding.objects.create(
                portfolio=portfolio, asset=asset, quantity=Decimal(str(quantity)), cost_basis=Decimal(str(cost))
            )
        if targets is not None:
            Strategy.objects.create(portfolio=portfolio, target_weights=targets, **strategy_fields)
        return portfolio

    return make


@pytest.fixture
def row_versions(db):
    """row_versions(Model, key) -> {key value: (calculated_at, ctid)}: each row's stamp and, on
    PostgreSQL, where its current version lives (a new ctid on every rewrite; None on SQLite)."""

    def versions(model, key):
        field = model._meta.get_field(key)
        ctids = {}
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {field.column}, ctid::text FROM {model._meta.db_table}")  # noqa: S608 - names from Model._meta
                ctids = dict(cursor.fetchall())
        return {
            value: (calculated_at, ctids.get(value))
            for value, calculated_at in model.objects.values_list(field.attname, "calculated_at")
        }

    return versions
