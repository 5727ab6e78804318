"""The market-data admin pages list, filter and search."""
from datetime import UTC, date, datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.urls import reverse

from market_data.models import Asset, PriceBar, Quote

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


@pytest.fixture
def data():
    aapl = Asset.objects.create(symbol="AAPL", name="Apple Inc")
    Asset.objects.create(symbol="MSFT", name="Microsoft")
    price = Decimal("190.5")
    PriceBar.objects.create(asset=aapl, date=date(2024, 6, 11), open=price, high=price, low=price, close=price,
                            volume=10)
    Quote.objects.create(asset=aapl, price=price, as_of=NOW, fetched_at=NOW, source="mock")


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["asset", "pricebar", "quote"])
def test_changelists_search_by_symbol(admin_client, data, model):
    response = admin_client.get(reverse(f"admin:market_data_{model}_changelist"), {"q": "AAPL"})

    assert response.status_code == HTTPStatus.OK
    assert response.context["cl"].result_count == 1


@pytest.mark.django_db
def test_price_bar_changelist_drills_down_by_date(admin_client, data):
    url = reverse("admin:market_data_pricebar_changelist")

    response = admin_client.get(url, {"date__year": 2024, "date__month": 6})

    assert response.status_code == HTTPStatus.OK
    assert "190.5" in response.content.decode()
