"""The portfolio read API: who sees which portfolio, what a portfolio shows, and caching."""

import json
from datetime import date, datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.renderers import JSONRenderer
from rest_framework.serializers import Serializer
from rest_framework.test import APIClient

from portfolios.api.serializers import PortfolioDetailSerializer, PortfolioSummarySerializer
from portfolios.models import (
    Allocation,
    BenchmarkComparison,
    Holding,
    Portfolio,
    PortfolioMetrics,
    RebalanceProposal,
    Signal,
)
from portfolios.selectors.read_api import portfolio_detail, portfolio_list
from refresh.models import RunSource, RunStatus
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh

# Refreshes here must move prices: after the day's close its final bar, not the moving quote, is the price.
pytestmark = pytest.mark.usefixtures("in_market_hours")

BASE = "/api/v1/portfolios"


@pytest.fixture
def refreshed(demo):
    """The demo after a full refresh: every figure the detail shows exists."""
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND, enqueue=False)
    assert execute_run_in_process(run=run).status == RunStatus.SUCCESS


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def ids(body):
    return [row["id"] for row in body["results"]]


def test_a_user_lists_only_their_own_portfolios(alice_api, alice):
    response = alice_api.get(f"{BASE}/")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert ids(body) == list(Portfolio.objects.filter(owner=alice).values_list("id", flat=True))
    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert body["results"][0]["owner"] == {"id": alice.pk, "username": "alice"}


@pytest.mark.parametrize("role", ["admin", "support"])
def test_admins_and_support_list_every_portfolio(demo, role):
    staff = get_user_model().objects.create_user(username=f"the-{role}", password="pw")
    staff.groups.add(Group.objects.get_or_create(name=role)[0])
    body = client_for(staff).get(f"{BASE}/").json()
    assert ids(body) == list(Portfolio.objects.order_by("id").values_list("id", flat=True))
    assert body["count"] == 3


def test_a_superuser_lists_every_portfolio(admin_api):
    assert admin_api.get(f"{BASE}/").json()["count"] == Portfolio.objects.count() == 3


def test_the_list_shows_headline_figures_once_refreshed(alice_api, alice, refreshed):
    row = alice_api.get(f"{BASE}/").json()["results"][0]
    metrics = PortfolioMetrics.objects.get(portfolio__owner=alice)
    assert row["metrics"]["market_value"] == str(metrics.market_value)
    assert row["metrics"]["return_1y"] == pytest.approx(metrics.return_1y)
    assert row["metrics"]["as_of"] == metrics.as_of.isoformat()


def test_a_list_is_paginated_with_links(admin_api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 2}
    first = admin_api.get(f"{BASE}/").json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["next"] == f"http://testserver{BASE}/?page=2"
    assert first["previous"] is None
    second = admin_api.get(first["next"]).json()
    assert ids(second) == list(Portfolio.objects.order_by("id").values_list("id", flat=True))[2:]
    assert second["previous"] == f"http://testserver{BASE}/"
    assert second["next"] is None


@pytest.mark.parametrize(
    ("page", "status", "code"),
    [
        ("2", HTTPStatus.NOT_FOUND, "not_found"),
        ("0", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("two", HTTPStatus.BAD_REQUEST, "invalid_request"),
    ],
)
def test_a_bad_page_is_a_clear_error(alice_api, page, status, code):
    response = alice_api.get(f"{BASE}/", {"page": page})
    assert response.status_code == status
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == code


def test_a_portfolio_shows_holdings_and_every_stored_figure(alice_api, alice, refreshed):
    portfolio = Portfolio.objects.get(owner=alice)
    response = alice_api.get(f"{BASE}/{portfolio.pk}/")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == set(PortfolioDetailSerializer().fields)

    held = Holding.objects.filter(portfolio=portfolio).select_related("asset", "asset__quote")
    assert [h["symbol"] for h in body["holdings"]] == sorted(h.asset.symbol for h in held)
    for row, holding in zip(body["holdings"], sorted(held, key=lambda h: h.asset.symbol), strict=True):
        assert row["quantity"] == str(holding.quantity)
        assert row["price"] == str(holding.asset.quote.price)  # quotes are newer than the last bar
        assert Decimal(row["market_value"]) == (holding.quantity * holding.asset.quote.price).quantize(Decimal("0.01"))
    assert sum(h["weight"] for h in body["holdings"]) == pytest.approx(1.0, abs=1e-5)  # each rounded to 6 places

    metrics = PortfolioMetrics.objects.get(portfolio=portfolio)
    assert body["metrics"]["market_value"] == str(metrics.market_value)
    assert body["metrics"]["sharpe"] == pytest.approx(metrics.sharpe)
    assert body["metrics"]["weights"] == metrics.weights
    comparison = BenchmarkComparison.objects.get(portfolio=portfolio)
    assert body["benchmark_comparison"]["benchmark_symbol"] == "SPY"
    assert body["benchmark_comparison"]["beta"] == pytest.approx(comparison.beta)
    assert {a["symbol"] for a in body["allocations"]} == set(
        Allocation.objects.filter(strategy__portfolio=portfolio).values_list("asset__symbol", flat=True)
    )
    assert {s["symbol"] for s in body["signals"]} == set(
        Signal.objects.filter(asset__holdings__portfolio=portfolio).values_list("asset__symbol", flat=True)
    )
    assert (
        len(body["rebalance_proposals"])
        == RebalanceProposal.objects.filter(strategy__portfolio=portfolio, status="proposed").count()
    )
    assert body["strategy"]["target_weights"] == portfolio.strategy.target_weights


def test_a_portfolio_before_any_refresh_has_empty_figures(alice_api, alice):
    body = alice_api.get(f"{BASE}/{Portfolio.objects.get(owner=alice).pk}").json()
    assert body["metrics"] is None
    assert body["benchmark_comparison"] is None
    assert body["allocations"] == []
    assert body["rebalance_proposals"] == []
    assert all(h["price"] is not None for h in body["holdings"])  # the seeded daily closes


def test_list_rows_have_the_documented_fields(alice_api, refreshed):
    row = alice_api.get(f"{BASE}/").json()["results"][0]
    assert set(row) == set(PortfolioSummarySerializer().fields)


def test_the_detail_is_its_serializers_rendering_of_the_selectors_data(alice_api, alice, refreshed):
    portfolio = Portfolio.objects.get(owner=alice)
    data = portfolio_detail(portfolio_id=portfolio.pk)
    assert data is not None
    # Data, not JSON: the serializer alone decides how values are written.
    assert isinstance(data["created_at"], datetime)
    assert data["owner"] == alice
    holding = data["holdings"][0]
    assert isinstance(holding["quantity"], Decimal)
    assert isinstance(holding["price_as_of"], (datetime, date))
    assert data["metrics"] == PortfolioMetrics.objects.get(portfolio=portfolio)

    body = alice_api.get(f"{BASE}/{portfolio.pk}/").json()

    assert body == json.loads(JSONRenderer().render(PortfolioDetailSerializer(data).data))
    assert list(body) == list(PortfolioDetailSerializer().fields)  # in the serializer's order
    metrics_serializer = PortfolioDetailSerializer().fields["metrics"]
    assert isinstance(metrics_serializer, Serializer)
    assert list(body["metrics"]) == list(metrics_serializer.fields)


def test_a_list_page_is_its_serializers_rendering_of_the_selectors_rows(admin_api, refreshed):
    first = Portfolio.objects.order_by("id").first()
    PortfolioMetrics.objects.filter(portfolio=first).update(
        null_reasons={"return_1y": "history does not reach back to the period's start", "sharpe": "volatility is zero"}
    )

    body = admin_api.get(f"{BASE}/").json()

    rows = PortfolioSummarySerializer(portfolio_list(owner_id=None), many=True).data
    assert body["results"] == json.loads(JSONRenderer().render(rows))
    # The summary shows the reasons of its own figures only.
    assert body["results"][0]["metrics"]["null_reasons"] == {
        "return_1y": "history does not reach back to the period's start"
    }


def test_another_users_portfolio_is_not_found(alice_api, bob):
    response = alice_api.get(f"{BASE}/{Portfolio.objects.get(owner=bob).pk}/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_portfolio_is_not_found(admin_api):
    assert admin_api.get(f"{BASE}/999999/").status_code == HTTPStatus.NOT_FOUND


def test_anonymous_reads_are_refused(demo):
    response = APIClient().get(f"{BASE}/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"]["code"] == "not_authenticated"


def test_reads_are_served_from_the_cache_until_a_refresh_invalidates_them(alice_api, alice, refreshed):
    portfolio = Portfolio.objects.get(owner=alice)
    first = alice_api.get(f"{BASE}/{portfolio.pk}/")
    assert first["X-Cache"] == "miss"
    PortfolioMetrics.objects.filter(portfolio=portfolio).update(market_value=Decimal("1.00"))

    second = alice_api.get(f"{BASE}/{portfolio.pk}/")
    assert second["X-Cache"] == "hit"
    assert second.json() == first.json()  # the database changed behind the cache's back
    listed = alice_api.get(f"{BASE}/")
    assert listed["X-Cache"] == "miss"
    assert alice_api.get(f"{BASE}/")["X-Cache"] == "hit"


def test_a_cached_portfolio_is_still_not_shown_to_another_user(admin_api, alice_api, bob):
    bobs = Portfolio.objects.get(owner=bob).pk
    assert admin_api.get(f"{BASE}/{bobs}/").status_code == HTTPStatus.OK  # now cached
    response = alice_api.get(f"{BASE}/{bobs}/")
    assert response.status_code == HTTPStatus.NOT_FOUND
