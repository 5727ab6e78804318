"""Cached reads after refreshes: exactly what changed is invalidated, the most read is re-warmed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core import read_cache
from market_data.models import Asset, Quote
from portfolios.models import Holding, Portfolio
from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.cached_reads import reads_showing
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh

# Refreshes here must move prices: after the day's close its final bar, not the moving quote, is the price.
pytestmark = pytest.mark.usefixtures("in_market_hours")

SYMBOL = "AAPL"


def run_now(kind, **kwargs):
    run, _ = request_refresh(kind=kind, requested_by=None, source=RunSource.COMMAND, enqueue=False, **kwargs)
    run = execute_run_in_process(run=run)
    assert run.status == RunStatus.SUCCESS, run.errors
    return run


@pytest.fixture
def clock(time_machine):
    """A frozen clock the test moves: the mock provider's quotes change from one minute to the next."""
    time_machine.move_to(timezone.now().replace(second=0, microsecond=0), tick=False)
    return time_machine


@pytest.fixture
def refreshed(demo, clock):
    """The demo after a full refresh, with AAPL held by only some of the portfolios."""
    run_now("all", mode="full")
    holders = set(Holding.objects.filter(asset__symbol=SYMBOL).values_list("portfolio_id", flat=True))
    if Portfolio.objects.exclude(pk__in=holders).exists():
        return holders
    # Every demo portfolio holds AAPL: drop it from one, so that one must stay cached.
    keep = Portfolio.objects.order_by("id").first()
    Holding.objects.filter(portfolio=keep, asset__symbol=SYMBOL).delete()
    keep.strategy.target_weights.pop(SYMBOL, None)
    keep.strategy.save()
    run_now("all", mode="full")
    return holders - {keep.pk}


def read_everything(admin_api, clients):
    """Read every portfolio (as admin and as its owner), both lists and AAPL's prices; returns bodies."""
    bodies = {}
    for portfolio in Portfolio.objects.select_related("owner"):
        bodies[f"portfolio:{portfolio.pk}"] = admin_api.get(f"/api/v1/portfolios/{portfolio.pk}/").json()
        owner_api = clients(portfolio.owner)
        bodies[f"portfolio-list:{portfolio.owner_id}:page:1"] = owner_api.get("/api/v1/portfolios/").json()
    bodies["portfolio-list:all:page:1"] = admin_api.get("/api/v1/portfolios/").json()
    bodies["asset-list:page:1"] = admin_api.get("/api/v1/assets/").json()
    for asset in Asset.objects.all():
        bodies[f"asset-prices:{asset.symbol}"] = admin_api.get(f"/api/v1/assets/{asset.symbol}/prices").json()
    return bodies


@pytest.fixture
def clients():
    from rest_framework.test import APIClient

    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


def test_incremental_refresh_of_one_asset_invalidates_only_what_shows_it(
    refreshed, admin_api, clients, clock, settings
):
    settings.DATA_CACHE_WARM_LIMIT = 0
    holders = refreshed
    before = read_everything(admin_api, clients)
    clock.shift(timedelta(minutes=5))

    run = run_now("prices", symbols=[SYMBOL])

    owners = dict(Portfolio.objects.filter(pk__in=holders).values_list("pk", "owner_id"))
    expected = (
        [f"portfolio:{pk}" for pk in sorted(holders)]
        + [f"portfolio-list:{owner}:page:1" for owner in sorted(set(owners.values()))]
        + ["portfolio-list:all:page:1", f"asset-prices:{SYMBOL}", "asset-list:page:1"]
    )
    assert run.cache_impact["scope"] == "selective"
    assert run.cache_impact["invalidated_keys"] == expected
    assert run.cache_impact["invalidated"] == len(expected)
    assert RefreshRun.objects.get(pk=run.pk).cache_impact == run.cache_impact

    new_price = str(Quote.objects.get(asset__symbol=SYMBOL).price)
    for portfolio in Portfolio.objects.all():
        response = admin_api.get(f"/api/v1/portfolios/{portfolio.pk}/")
        shown = {h["symbol"]: h["price"] for h in response.json()["holdings"]}
        if portfolio.pk in holders:
            assert response["X-Cache"] == "miss"
            assert (
                shown[SYMBOL]
                == new_price
                != {h["symbol"]: h["price"] for h in before[f"portfolio:{portfolio.pk}"]["holdings"]}[SYMBOL]
            )
        else:
            assert response["X-Cache"] == "hit"
            assert response.json() == before[f"portfolio:{portfolio.pk}"]
    untouched = admin_api.get("/api/v1/assets/MSFT/prices")
    assert untouched["X-Cache"] == "hit"
    assert untouched.json() == before["asset-prices:MSFT"]
    changed = admin_api.get(f"/api/v1/assets/{SYMBOL}/prices")
    assert changed["X-Cache"] == "miss"
    assert changed.json()["quote"]["price"] == new_price


def test_an_incremental_all_refresh_recalculates_and_invalidates_only_the_changed_assets_portfolios(
    refreshed, admin_api, clients, settings
):
    settings.DATA_CACHE_WARM_LIMIT = 0
    holders = refreshed
    read_everything(admin_api, clients)
    # Same minute, so every quote comes back unchanged except the one made stale here.
    Quote.objects.filter(asset__symbol=SYMBOL).update(price=Decimal("1.000000"))

    run = run_now("all")

    invalidated = run.cache_impact["invalidated_keys"]
    assert {name for name in invalidated if name.startswith("portfolio:")} == {f"portfolio:{pk}" for pk in holders}
    assert {name for name in invalidated if name.startswith("asset-prices:")} == {f"asset-prices:{SYMBOL}"}
    assert run.items_updated["portfolios"] == len(holders)


def test_a_benchmark_refresh_invalidates_every_portfolio_but_no_other_asset(
    refreshed, admin_api, clients, clock, settings
):
    settings.DATA_CACHE_WARM_LIMIT = 0
    read_everything(admin_api, clients)
    clock.shift(timedelta(minutes=5))

    run = run_now("benchmark")

    invalidated = run.cache_impact["invalidated_keys"]
    assert {n for n in invalidated if n.startswith("portfolio:")} == {
        f"portfolio:{pk}" for pk in Portfolio.objects.values_list("pk", flat=True)
    }
    assert {n for n in invalidated if n.startswith("asset-prices:")} == {"asset-prices:SPY"}
    assert admin_api.get("/api/v1/assets/MSFT/prices")["X-Cache"] == "hit"


def test_the_most_read_invalidated_entries_are_rebuilt_after_the_refresh(
    refreshed, admin_api, clients, clock, settings
):
    settings.DATA_CACHE_WARM_LIMIT = 2
    holders = sorted(refreshed)
    read_everything(admin_api, clients)
    popular = holders[-1]
    for _ in range(5):
        admin_api.get(f"/api/v1/portfolios/{popular}/")
    for _ in range(3):
        admin_api.get(f"/api/v1/assets/{SYMBOL}/prices")
    clock.shift(timedelta(minutes=5))

    run = run_now("prices", symbols=[SYMBOL])

    assert run.cache_impact["warmed_keys"] == [f"portfolio:{popular}", f"asset-prices:{SYMBOL}"]
    assert run.cache_impact["warmed"] == 2
    new_price = str(Quote.objects.get(asset__symbol=SYMBOL).price)
    warmed = admin_api.get(f"/api/v1/portfolios/{popular}/")
    assert warmed["X-Cache"] == "hit"
    assert {h["symbol"]: h["price"] for h in warmed.json()["holdings"]}[SYMBOL] == new_price
    assert admin_api.get(f"/api/v1/assets/{SYMBOL}/prices").json()["quote"]["price"] == new_price
    others = [pk for pk in holders if pk != popular]
    if others:  # invalidated but read less: rebuilt on the next read
        assert admin_api.get(f"/api/v1/portfolios/{others[0]}/")["X-Cache"] == "miss"


def test_a_full_refresh_drops_every_entry_and_rewarms_the_most_read(refreshed, admin_api, clients, clock, settings):
    settings.DATA_CACHE_WARM_LIMIT = 1
    read_everything(admin_api, clients)
    portfolio = Portfolio.objects.order_by("id").last()
    for _ in range(3):
        admin_api.get(f"/api/v1/portfolios/{portfolio.pk}/")
    generation = read_cache.generation()
    clock.shift(timedelta(minutes=5))

    run = run_now("all", mode="full")

    assert run.cache_impact["scope"] == "everything"
    assert read_cache.generation() == generation + 1
    assert run.cache_impact["invalidated"] == len(reads_showing(portfolio_ids=None, symbols=None))
    assert run.cache_impact["warmed_keys"] == [f"portfolio:{portfolio.pk}"]
    assert admin_api.get(f"/api/v1/portfolios/{portfolio.pk}/")["X-Cache"] == "hit"
    assert admin_api.get("/api/v1/assets/MSFT/prices")["X-Cache"] == "miss"
    assert admin_api.get("/api/v1/portfolios/")["X-Cache"] == "miss"
