"""The portfolios admin: lists, the holdings inline and applying proposals."""
from datetime import date
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.urls import reverse

from portfolios.models import Holding, ProposalStatus, RebalanceProposal
from portfolios.services.metrics import recalculate_portfolio_metrics
from portfolios.services.strategy import recalculate_strategies

MODELS = ["portfolio", "holding", "strategy", "signal", "allocation", "rebalanceproposal", "portfoliometrics",
          "benchmarkcomparison"]


@pytest.fixture
def portfolio(make_asset, make_portfolio):
    a = make_asset("AAA", [50], start=date(2025, 3, 3))
    b = make_asset("BBB", [100], start=date(2025, 3, 3))
    return make_portfolio({a: (10, 500), b: (5, 500)}, targets={"AAA": 0.8, "BBB": 0.2})


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS)
def test_changelists_render(admin_client, portfolio, model):
    recalculate_portfolio_metrics()
    recalculate_strategies()

    response = admin_client.get(reverse(f"admin:portfolios_{model}_changelist"), {"q": "AAA"})

    assert response.status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_portfolio_page_shows_holdings_inline(admin_client, portfolio):
    response = admin_client.get(reverse("admin:portfolios_portfolio_change", args=[portfolio.id]))

    assert response.status_code == HTTPStatus.OK
    assert b"holdings-TOTAL_FORMS" in response.content


@pytest.mark.django_db
def test_metrics_are_read_only(admin_client, portfolio):
    recalculate_portfolio_metrics()

    response = admin_client.get(reverse("admin:portfolios_portfoliometrics_change", args=[portfolio.id]))

    assert response.status_code == HTTPStatus.OK
    assert b'name="_save"' not in response.content
    assert admin_client.get(reverse("admin:portfolios_portfoliometrics_add")).status_code == HTTPStatus.FORBIDDEN


@pytest.mark.django_db
def test_apply_action_applies_proposals(admin_client, portfolio):
    recalculate_strategies()

    response = admin_client.post(reverse("admin:portfolios_strategy_changelist"), {
        "action": "apply_proposed_trades", "_selected_action": [portfolio.strategy.id]}, follow=True)

    assert response.status_code == HTTPStatus.OK
    assert b"Applied 2 proposed trade(s)." in response.content
    assert RebalanceProposal.objects.filter(status=ProposalStatus.APPLIED).count() == 2
    assert Holding.objects.get(asset__symbol="AAA").quantity == Decimal(16)  # 0.8 * 1000 / 50
