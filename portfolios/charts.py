"""The admin portfolio page's chart: the portfolio's value against the benchmark over its window."""

import numpy as np
from django.conf import settings

from market_data.models import Asset

from .analytics.valuation import value_series
from .analytics.windows import HISTORY_DAYS, one_year_window
from .conventions import return_basis
from .selectors.holdings import held_asset_ids, load_holdings
from .selectors.prices import load_recent_price_history

REBASED_TO = 100.0


def value_chart(*, portfolio_id: int) -> dict | None:
    """The portfolio's value and the benchmark's on the portfolio's own calendar over its one-year
    window (as its figures see them), both rebased to 100 at the window's start.

    {"dates", "portfolio", "benchmark" (None on days before the benchmark's first close),
    "benchmark_symbol", "return_basis"}; None when nothing it holds has a price.
    """
    asset_ids = held_asset_ids(portfolio_ids=[portfolio_id])
    if not asset_ids:
        return None
    benchmark_id = Asset.objects.filter(symbol=settings.BENCHMARK_SYMBOL).values_list("id", flat=True).first()
    price_ids = [*asset_ids, *([benchmark_id] if benchmark_id and benchmark_id not in asset_ids else [])]
    history = load_recent_price_history(asset_ids=price_ids, days=HISTORY_DAYS)
    quantities, _ = load_holdings(portfolio_ids=[portfolio_id], asset_ids=price_ids)
    quantities = np.where(history.priced[None, :], quantities, 0.0)
    values, calendar = value_series(quantities, history.closes, history.traded)
    window = one_year_window(values, calendar, history.dates)
    days = np.flatnonzero(window.inside[0])
    if not len(days):
        return None
    own = values[0, days]
    bench = history.closes[history.row(benchmark_id), days] if benchmark_id else np.full(len(days), np.nan)
    first_bench = bench[np.isfinite(bench)][0] if np.isfinite(bench).any() else np.nan
    return {
        "dates": np.datetime_as_string(history.dates[days], unit="D").tolist(),
        "portfolio": _rounded(own / own[0] * REBASED_TO),
        "benchmark": _rounded(bench / first_bench * REBASED_TO),
        "benchmark_symbol": settings.BENCHMARK_SYMBOL,
        "return_basis": return_basis(),
    }


def _rounded(series: np.ndarray) -> list[float | None]:
    return [round(float(value), 4) if np.isfinite(value) else None for value in series]
