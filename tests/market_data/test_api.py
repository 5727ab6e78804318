"""The asset read API: every asset with its quote, an asset's prices between two days, caching."""

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from market_data.api.serializers import (
    AssetSerializer,
    PriceBarSerializer,
    PriceHistorySerializer,
    PriceWindowSerializer,
)
from market_data.models import Asset, PriceBar, Quote
from market_data.providers import MockProvider
from market_data.selectors import asset_history, asset_list
from market_data.services import store_history

BASE = "/api/v1/assets"


@pytest.fixture
def crypto(demo):
    """BTC/USD with two years of daily bars: a symbol with a slash in it."""
    Asset.objects.create(symbol="BTC/USD", name="Bitcoin")
    end = timezone.localdate() - timedelta(days=1)
    history = MockProvider().fetch_history(["BTC/USD"], start=end - timedelta(days=730), end=end)
    store_history(histories=history.items.values())
    return list(PriceBar.objects.filter(asset__symbol="BTC/USD").order_by("date"))


def test_assets_are_listed_by_symbol_with_their_quotes(alice_api, run_tasks, admin_api):
    run_tasks(admin_api.post, "/api/v1/manual/refresh/prices", {}, format="json")
    response = alice_api.get(f"{BASE}/")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["count"] == Asset.objects.count() == 11
    assert [row["symbol"] for row in body["results"]] == sorted(Asset.objects.values_list("symbol", flat=True))
    row = next(r for r in body["results"] if r["symbol"] == "AAPL")
    assert set(row) == set(AssetSerializer().fields)
    quote = Quote.objects.get(asset__symbol="AAPL")
    assert row["quote"]["price"] == str(quote.price)
    assert row["quote"]["as_of"].endswith("Z")


def rendered(data):
    return json.loads(JSONRenderer().render(data))


def test_the_list_is_its_serializers_rendering_of_the_selectors_rows(alice_api, run_tasks, admin_api):
    run_tasks(admin_api.post, "/api/v1/manual/refresh/prices", {}, format="json")

    body = alice_api.get(f"{BASE}/").json()

    assert body["results"] == rendered(AssetSerializer(asset_list(), many=True).data)


def test_a_window_is_cut_from_the_assets_history_as_its_serializers_render_it(alice_api, crypto):
    asset = asset_history(symbol="BTC/USD")
    assert list(asset.bars.all()) == crypto  # data, not JSON: the serializers write it
    history = rendered(PriceHistorySerializer(asset).data)

    body = alice_api.get(
        f"{BASE}/BTC/USD/prices", {"start": crypto[5].date.isoformat(), "end": crypto[9].date.isoformat()}
    ).json()

    assert list(body) == list(PriceWindowSerializer().fields)
    assert body["prices"] == history["prices"][5:10]
    assert {name: body[name] for name in AssetSerializer().fields} == {
        name: value for name, value in history.items() if name != "prices"
    }
    assert asset_history(symbol="NOPE") is None


def test_an_asset_without_a_quote_lists_a_null_quote(alice_api):
    rows = alice_api.get(f"{BASE}/").json()["results"]
    assert all(row["quote"] is None for row in rows)


def test_prices_default_to_the_year_up_to_the_last_bar(alice_api, crypto):
    response = alice_api.get(f"{BASE}/BTC/USD/prices")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == set(PriceWindowSerializer().fields)
    last = crypto[-1]
    start = last.date - timedelta(days=365)
    expected = [bar for bar in crypto if bar.date >= start]
    assert body["symbol"] == "BTC/USD"
    assert (body["start"], body["end"]) == (start.isoformat(), last.date.isoformat())
    assert body["count"] == len(expected) == len(body["prices"])
    assert body["prices"][0]["date"] == expected[0].date.isoformat()
    assert body["prices"][-1] == {
        "date": last.date.isoformat(),
        "open": str(last.open),
        "high": str(last.high),
        "low": str(last.low),
        "close": str(last.close),
        "volume": last.volume,
    }
    assert set(body["prices"][0]) == set(PriceBarSerializer().fields)


def test_prices_between_two_days_are_inclusive(alice_api, crypto):
    start, end = crypto[10].date, crypto[20].date
    body = alice_api.get(f"{BASE}/btc/usd/prices/", {"start": start.isoformat(), "end": end.isoformat()}).json()
    assert [row["date"] for row in body["prices"]] == [bar.date.isoformat() for bar in crypto[10:21]]
    assert body["count"] == 11


def test_a_range_with_no_bars_is_empty(alice_api, crypto):
    body = alice_api.get(f"{BASE}/BTC/USD/prices", {"start": "1990-01-01", "end": "1990-12-31"}).json()
    assert body["count"] == 0
    assert body["prices"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-02-30"}, "end"),
        ({"start": "2025-03-01", "end": "2025-02-01"}, "start must not be after end"),
    ],
)
def test_a_bad_range_is_a_400_that_names_the_problem(alice_api, crypto, query, message):
    response = alice_api.get(f"{BASE}/BTC/USD/prices", query)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]


def test_an_unknown_symbol_is_not_found(alice_api):
    response = alice_api.get(f"{BASE}/NOPE/prices")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"] == {"code": "not_found", "message": "No asset NOPE."}


def test_anonymous_reads_are_refused(demo):
    assert APIClient().get(f"{BASE}/AAPL/prices").status_code == HTTPStatus.UNAUTHORIZED


def test_every_range_of_an_asset_is_served_from_one_cached_series(alice_api, crypto):
    assert alice_api.get(f"{BASE}/BTC/USD/prices")["X-Cache"] == "miss"
    PriceBar.objects.filter(asset__symbol="BTC/USD").delete()  # behind the cache's back
    other_range = alice_api.get(f"{BASE}/BTC/USD/prices", {"start": crypto[0].date.isoformat()})
    assert other_range["X-Cache"] == "hit"
    assert other_range.json()["count"] == len(crypto)
    assert alice_api.get(f"{BASE}/")["X-Cache"] == "miss"
    assert alice_api.get(f"{BASE}/")["X-Cache"] == "hit"


def test_a_browser_pages_through_the_list(admin, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 2}
    client = Client()
    client.force_login(admin)

    response = client.get(f"{BASE}/", {"page": 2}, HTTP_ACCEPT="text/html")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'class="pagination"' in html
    assert f'href="http://testserver{BASE}/?page=3"' in html
