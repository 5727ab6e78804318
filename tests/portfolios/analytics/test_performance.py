"""Performance figures against values worked out by hand."""
import math
from datetime import date

import numpy as np
import pytest

from portfolios.analytics.performance import months_before, performance

# Daily returns +10%, -10%, +10%, +2% across a year end.
YEAR_END_DATES = np.array(["2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03", "2025-01-06"], dtype="datetime64[D]")
YEAR_END_VALUES = np.array([[100.0, 110.0, 99.0, 108.9, 111.078]])


def test_one_day_and_year_to_date_returns():
    figures = performance(YEAR_END_VALUES, YEAR_END_DATES, risk_free_rate=0.04)

    assert figures["return_1d"][0] == pytest.approx(111.078 / 108.9 - 1)  # 0.02
    assert figures["return_1d"][0] == pytest.approx(0.02)
    # YTD starts at the last close of 2024, 110.
    assert figures["return_ytd"][0] == pytest.approx(111.078 / 110 - 1)
    # No history a month or a year back.
    assert math.isnan(figures["return_1m"][0])
    assert math.isnan(figures["return_1y"][0])


def test_volatility_sharpe_and_drawdown_by_hand():
    figures = performance(YEAR_END_VALUES, YEAR_END_DATES, risk_free_rate=0.04)

    # Returns 0.10, -0.10, 0.10, 0.02: mean 0.03, deviations 0.07, -0.13, 0.07, -0.01.
    sample_variance = (0.07**2 + 0.13**2 + 0.07**2 + 0.01**2) / 3
    volatility = math.sqrt(sample_variance) * math.sqrt(252)
    assert figures["volatility"][0] == pytest.approx(volatility)
    assert figures["volatility"][0] == pytest.approx(1.50040, abs=1e-5)
    assert figures["sharpe"][0] == pytest.approx((0.03 * 252 - 0.04) / volatility)
    # Peak 110 then trough 99.
    assert figures["max_drawdown"][0] == pytest.approx(99 / 110 - 1)


def test_month_year_and_ytd_starts_use_last_date_on_or_before():
    dates = np.array(["2023-03-15", "2023-12-29", "2024-02-28", "2024-02-29", "2024-03-28", "2024-03-29"],
                     dtype="datetime64[D]")
    values = np.array([[100.0, 125.0, 118.0, 120.0, 128.0, 130.0]])

    figures = performance(values, dates, risk_free_rate=0.0)

    assert figures["return_1d"][0] == pytest.approx(130 / 128 - 1)
    assert figures["return_1m"][0] == pytest.approx(130 / 120 - 1)  # 2024-02-29, one month before 03-29
    assert figures["return_ytd"][0] == pytest.approx(130 / 125 - 1)  # 2023-12-29, last date of 2023
    assert figures["return_1y"][0] == pytest.approx(130 / 100 - 1)  # 2023-03-15 <= 2023-03-29


def test_months_before_clips_to_month_end():
    assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
    assert months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert months_before(date(2025, 1, 15), 1) == date(2024, 12, 15)


def test_risk_figures_use_only_the_last_252_returns():
    # A wild start (outside the window), then 252 returns alternating +1% and -1%.
    wild = [200.0, 50.0] * 23 + [200.0]
    steady = [100.0]
    for i in range(252):
        steady.append(steady[-1] * (1.01 if i % 2 == 0 else 0.99))
    values = np.array([wild + steady])
    dates = np.datetime64("2020-01-01") + np.arange(values.shape[1])

    figures = performance(values, dates, risk_free_rate=0.0)

    # Mean return 0; sum of squared deviations 252 * 0.01^2; ddof=1.
    assert figures["volatility"][0] == pytest.approx(math.sqrt(252 * 0.0001 / 251) * math.sqrt(252))
    assert figures["sharpe"][0] == pytest.approx(0.0, abs=1e-9)
    # Peak after the first +1%, trough at the end after 126 (+1%, -1%) pairs.
    assert figures["max_drawdown"][0] == pytest.approx(100 * 0.9999**126 / 101 - 1)


def test_missing_history_gives_nan_not_errors():
    dates = np.array(["2025-01-02", "2025-01-03", "2025-01-06"], dtype="datetime64[D]")
    values = np.array([
        [np.nan, 50.0, 55.0],      # one held asset had no price on the first day
        [100.0, 100.0, 100.0],     # flat: zero volatility
        [0.0, 0.0, 0.0],           # nothing held
    ])

    figures = performance(values, dates, risk_free_rate=0.04)

    assert figures["return_1d"] == pytest.approx([0.1, 0.0, np.nan], nan_ok=True)
    assert math.isnan(figures["volatility"][0])  # a single return
    assert figures["max_drawdown"][0] == 0.0
    assert figures["volatility"][1] == 0.0
    assert math.isnan(figures["sharpe"][1])
    assert all(math.isnan(figures[name][2]) for name in ("volatility", "sharpe", "max_drawdown"))


def test_single_day_has_no_returns():
    figures = performance(np.array([[100.0]]), np.array(["2025-01-02"], dtype="datetime64[D]"), risk_free_rate=0.04)

    assert all(math.isnan(value[0]) for value in figures.values())
