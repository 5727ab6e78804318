"""The market-data admin pages list, filter and search."""

from datetime import UTC, date, datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.urls import reverse

from market_data.models import Asset, PriceAnomaly, PriceBar, ProviderUsage, Quote

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


@pytest.fixture
def data():
    aapl = Asset.objects.create(symbol="AAPL", name="Apple Inc")
    Asset.objects.create(symbol="MSFT", name="Microsoft")
    price = Decimal("190.5")
    PriceBar.objects.create(
        asset=aapl, date=date(2024, 6, 11), open=price, high=price, low=price, close=price, volume=10
    )
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


@pytest.mark.django_db
def test_anomalies_are_listed_for_review_and_cannot_be_edited(admin_client):
    PriceAnomaly.objects.create(
        symbol="AAPL",
        kind="large_move",
        message="Moved +40.0%",
        value=Decimal("140"),
        reference=Decimal("100"),
        refresh_id="ref_abc",
        source="twelvedata",
        detected_at=NOW,
    )
    PriceAnomaly.objects.create(
        symbol="MSFT", kind="non_positive", message="Price 0", value=Decimal("0"), source="twelvedata", detected_at=NOW
    )

    response = admin_client.get(reverse("admin:market_data_priceanomaly_changelist"), {"kind": "large_move"})

    assert response.status_code == HTTPStatus.OK
    assert [row.symbol for row in response.context["cl"].result_list] == ["AAPL"]
    assert admin_client.get(reverse("admin:market_data_priceanomaly_add")).status_code == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_provider_use_per_day_is_listed(admin_client):
    ProviderUsage.objects.create(day=date(2024, 6, 11), provider="twelvedata", calls=12, credits=96)

    response = admin_client.get(reverse("admin:market_data_providerusage_changelist"))

    assert response.status_code == HTTPStatus.OK
    assert "96" in response.content.decode()
