"""The portfolios admin: lists, the holdings inline and applying proposals."""

from datetime import date, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.urls import reverse

from portfolios.models import Holding, ProposalStatus, RebalanceProposal
from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.performance import recalculate_portfolio_metrics
from portfolios.services.strategy import recalculate_strategies

MODELS = [
    "portfolio",
    "holding",
    "strategy",
    "signal",
    "allocation",
    "rebalanceproposal",
    "portfoliometrics",
    "benchmarkcomparison",
]


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

    response = admin_client.post(
        reverse("admin:portfolios_strategy_changelist"),
        {"action": "apply_proposed_trades", "_selected_action": [portfolio.strategy.id]},
        follow=True,
    )

    assert response.status_code == HTTPStatus.OK
    assert b"Applied 2 proposed trade(s)." in response.content
    assert RebalanceProposal.objects.filter(status=ProposalStatus.APPLIED).count() == 2
    assert Holding.objects.get(asset__symbol="AAA").quantity == Decimal(16)  # 0.8 * 1000 / 50


@pytest.mark.django_db
def test_portfolio_page_draws_the_value_against_the_benchmark(admin_client, make_asset, make_portfolio):
    days = [day for day in (date(2025, 3, 3) + timedelta(days=i) for i in range(28)) if day.weekday() < 5]
    make_asset("SPY", [400 + i for i in range(len(days))], dates=days)
    fund = make_asset("FUND", [50 + (i % 4) for i in range(len(days))], dates=days)
    portfolio = make_portfolio({fund: (2, 100)})

    response = admin_client.get(reverse("admin:portfolios_portfolio_change", args=[portfolio.id]))

    assert response.status_code == HTTPStatus.OK
    chart = response.context["value_chart"]
    assert chart["dates"] == [day.isoformat() for day in days]
    assert chart["benchmark_symbol"] == "SPY"
    assert chart["portfolio"][0] == chart["benchmark"][0] == 100.0  # both rebased at the window's start
    assert chart["portfolio"][1] == pytest.approx(102.0)
    assert chart["benchmark"][-1] == pytest.approx(100 * (400 + len(days) - 1) / 400, abs=1e-4)
    content = response.content.decode()
    assert 'id="value-chart-data"' in content
    assert "core/vendor/chartjs/chart.umd.min.js" in content
    assert "portfolios/admin/value_chart.js" in content
    assert 'id="refresh-portfolio-now"' in content  # the refresh button's template is still extended


@pytest.mark.django_db
def test_portfolio_page_without_prices_says_there_is_no_series(admin_client, make_asset, make_portfolio):
    portfolio = make_portfolio({make_asset("IPO"): (2, 100)})

    response = admin_client.get(reverse("admin:portfolios_portfolio_change", args=[portfolio.id]))

    assert response.status_code == HTTPStatus.OK
    assert response.context["value_chart"] is None
    assert b'id="value-chart-empty"' in response.content
    assert b"chart.umd.min.js" not in response.content


@pytest.mark.django_db
def test_figure_pages_show_windows_and_null_reasons(admin_client, portfolio):
    recalculate_portfolio_metrics()
    recalculate_benchmark_comparisons()

    page = admin_client.get(reverse("admin:portfolios_portfoliometrics_change", args=[portfolio.id])).content.decode()

    assert "Window, conventions and null figures" in page
    assert "no daily return in the window" in page
    assert "Unpriced holdings" in page
    assert "Max drawdown trough" in page
