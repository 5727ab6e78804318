"""What the read API says about figures: windows, conventions, and why a figure is null."""

from datetime import date, timedelta
from http import HTTPStatus

import pytest
from rest_framework.test import APIClient

from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.performance import recalculate_portfolio_metrics

WEEKDAYS = [day for day in (date(2025, 3, 3) + timedelta(days=i) for i in range(42)) if day.weekday() < 5]


def moving(count: int, start: float = 100.0) -> list[float]:
    return [round(start * (1.01 if i % 3 else 0.985) ** i, 4) for i in range(count)]


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def detail(api, portfolio) -> dict:
    recalculate_portfolio_metrics()
    recalculate_benchmark_comparisons()
    response = api.get(f"/api/v1/portfolios/{portfolio.id}/")
    assert response.status_code == HTTPStatus.OK
    return response.json()


@pytest.mark.django_db
def test_constant_prices_have_zero_volatility_and_no_ratios(api, make_asset, make_portfolio):
    make_asset("SPY", moving(len(WEEKDAYS)), dates=WEEKDAYS)
    flat = make_asset("FLAT", [25.0] * len(WEEKDAYS), dates=WEEKDAYS)
    portfolio = make_portfolio({flat: (4, 100)})

    body = detail(api, portfolio)

    metrics, comparison = body["metrics"], body["benchmark_comparison"]
    assert metrics["volatility"] == 0.0
    assert metrics["max_drawdown"] == 0.0
    assert metrics["sharpe"] is None
    assert metrics["null_reasons"]["sharpe"] == "volatility is zero"
    assert metrics["null_reasons"]["calmar"] == "less than a year of history"
    assert metrics["window_start"] == "2025-03-03"
    assert metrics["window_end"] == WEEKDAYS[-1].isoformat()
    assert metrics["observations"] == len(WEEKDAYS) - 1
    assert metrics["periods_per_year"] == 252
    assert metrics["return_basis"] == "total"
    assert metrics["risk_free_rate"] == 0.04
    assert metrics["period_starts"]["return_1d"] == WEEKDAYS[-2].isoformat()
    assert comparison["beta"] == 0.0
    assert comparison["correlation"] is None
    assert comparison["null_reasons"]["correlation"] == "the portfolio's returns do not vary"
    assert comparison["return_basis"] == "total"
    assert comparison["observations"] == len(WEEKDAYS) - 1


@pytest.mark.django_db
def test_a_flat_benchmark_gives_no_beta_alpha_or_correlation(api, make_asset, make_portfolio):
    make_asset("SPY", [400.0] * len(WEEKDAYS), dates=WEEKDAYS)
    fund = make_asset("FUND", moving(len(WEEKDAYS)), dates=WEEKDAYS)
    portfolio = make_portfolio({fund: (4, 100)})

    comparison = detail(api, portfolio)["benchmark_comparison"]

    assert comparison["beta"] is None
    assert comparison["correlation"] is None
    assert comparison["alpha"] is None
    assert comparison["null_reasons"]["beta"] == "the benchmark's returns do not vary"
    assert comparison["null_reasons"]["alpha"] == "less than a year of history"
    assert comparison["tracking_error"] > 0
    assert comparison["information_ratio"] is not None


@pytest.mark.django_db
def test_a_single_day_gives_every_figure_null_with_its_reason(api, make_asset, make_portfolio):
    make_asset("SPY", [400.0], start=date(2025, 3, 3))
    one = make_asset("ONE", [10.0], start=date(2025, 3, 3))
    portfolio = make_portfolio({one: (4, 50)})

    body = detail(api, portfolio)

    metrics = body["metrics"]
    assert metrics["market_value"] == "40.00"
    assert metrics["observations"] == 0
    assert metrics["window_start"] == metrics["window_end"] == "2025-03-03"
    for name in (
        "return_1d",
        "cumulative_return",
        "annualised_return",
        "volatility",
        "downside_deviation",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
    ):
        assert metrics[name] is None, name
        assert metrics["null_reasons"][name], name
    assert metrics["null_reasons"]["volatility"] == "fewer than 20 daily returns in the window"
    assert metrics["null_reasons"]["cumulative_return"] == "no daily return in the window"
    comparison = body["benchmark_comparison"]
    assert comparison["beta"] is None
    assert comparison["observations"] == 0
    assert comparison["null_reasons"]["beta"] == "fewer than 20 daily returns shared with the benchmark"


@pytest.mark.django_db
def test_a_short_history_says_the_minimum_it_misses(api, make_asset, make_portfolio):
    make_asset("SPY", moving(20, 300), dates=WEEKDAYS[:20])
    fund = make_asset("FUND", moving(20), dates=WEEKDAYS[:20])  # 19 returns: one short
    portfolio = make_portfolio({fund: (1, 100)})

    body = detail(api, portfolio)

    assert body["metrics"]["observations"] == 19
    assert body["metrics"]["volatility"] is None
    assert body["metrics"]["null_reasons"]["volatility"] == "fewer than 20 daily returns in the window"
    assert body["benchmark_comparison"]["correlation"] is None


@pytest.mark.django_db
def test_unpriced_holdings_are_shown_and_left_out(api, make_asset, make_portfolio):
    make_asset("SPY", moving(len(WEEKDAYS)), dates=WEEKDAYS)
    fund = make_asset("FUND", moving(len(WEEKDAYS)), dates=WEEKDAYS)
    unpriced = make_asset("IPO")
    portfolio = make_portfolio({fund: (1, 100), unpriced: (10, 1000)})

    body = detail(api, portfolio)

    metrics = body["metrics"]
    assert [h["symbol"] for h in metrics["unpriced_holdings"]] == ["IPO"]
    assert metrics["cost"] == "100.00"
    assert metrics["unpriced_holdings"][0]["since"]
    assert metrics["volatility"] is not None
    assert list(metrics["weights"]) == ["FUND"]
    ipo = next(h for h in body["holdings"] if h["symbol"] == "IPO")
    assert ipo["price"] is None
    assert ipo["market_value"] is None
    listed = api.get("/api/v1/portfolios/").json()["results"][0]["metrics"]
    assert listed["cost"] == "100.00"
    assert listed["null_reasons"] == {
        "return_ytd": "history does not reach back to the period's start",
        "return_1y": "history does not reach back to the period's start",
    }
