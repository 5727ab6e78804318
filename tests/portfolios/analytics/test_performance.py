"""Performance figures against values worked out by hand: windows, calendars, minimums and nulls."""

import math

import numpy as np
import pytest

from portfolios.analytics import nulls
from portfolios.analytics.performance import performance
from portfolios.analytics.windows import months_before

# Daily returns +10%, -10%, +10%, +2% across a year end.
YEAR_END_DATES = np.array(["2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03", "2025-01-06"], dtype="datetime64[D]")
YEAR_END_VALUES = np.array([[100.0, 110.0, 99.0, 108.9, 111.078]])


def weekdays(start: str, count: int) -> np.ndarray:
    return np.busday_offset(np.datetime64(start), np.arange(count), roll="forward")


def figures_of(values, dates, *, calendar=None, risk_free_rate=0.0):
    values = np.atleast_2d(np.asarray(values, dtype=float))
    calendar = np.ones(values.shape, bool) if calendar is None else np.atleast_2d(calendar)
    figures = performance(values, calendar, dates, risk_free_rate=risk_free_rate)
    return figures.columns, figures.null_reasons()


def alternating(count: int, up=0.01, down=-0.01, start=100.0) -> list[float]:
    """start, then `count` returns alternating up and down."""
    values = [start]
    for i in range(count):
        values.append(values[-1] * (1 + (up if i % 2 == 0 else down)))
    return values


def test_one_day_and_year_to_date_returns_with_their_starts():
    columns, reasons = figures_of(YEAR_END_VALUES, YEAR_END_DATES)

    assert columns["return_1d"][0] == pytest.approx(111.078 / 108.9 - 1)  # 0.02
    assert columns["return_ytd"][0] == pytest.approx(111.078 / 110 - 1)  # from the last close of 2024
    assert columns["start_return_ytd"][0] == np.datetime64("2024-12-31")
    assert columns["start_return_1d"][0] == np.datetime64("2025-01-03")
    assert math.isnan(columns["return_1m"][0])
    assert math.isnan(columns["return_1y"][0])
    assert reasons[0]["return_1m"] == reasons[0]["return_1y"] == nulls.NO_HISTORY


def test_four_returns_are_too_few_for_risk_figures_and_say_so():
    columns, reasons = figures_of(YEAR_END_VALUES, YEAR_END_DATES, risk_free_rate=0.04)

    assert columns["observations"][0] == 4
    assert columns["cumulative_return"][0] == pytest.approx(111.078 / 100 - 1)
    for name in ("volatility", "downside_deviation", "sharpe", "sortino", "max_drawdown"):
        assert math.isnan(columns[name][0])
        assert reasons[0][name] == nulls.TOO_FEW_RETURNS
    assert reasons[0]["annualised_return"] == reasons[0]["calmar"] == nulls.LESS_THAN_A_YEAR


def test_twenty_returns_by_hand():
    returns = np.array([0.10, -0.09] + [0.10, -0.05] * 9)
    values = 100 * np.cumprod(np.concatenate([[1.0], 1 + returns]))
    dates = weekdays("2025-01-02", 21)

    columns, reasons = figures_of(values, dates, risk_free_rate=0.0504)

    mean = (0.10 * 10 - 0.09 - 0.05 * 9) / 20
    deviation = math.sqrt(((returns - mean) ** 2).sum() / 19)
    target = 0.0504 / 252
    downside = math.sqrt(((-0.09 - target) ** 2 + 9 * (-0.05 - target) ** 2) / 20)  # the falls, over all 20
    assert columns["observations"][0] == 20
    assert reasons[0].keys() == {"return_1m", "return_ytd", "return_1y", "annualised_return", "calmar"}
    assert columns["volatility"][0] == pytest.approx(deviation * math.sqrt(252))
    assert columns["sharpe"][0] == pytest.approx((mean - target) / deviation * math.sqrt(252))
    assert columns["downside_deviation"][0] == pytest.approx(downside * math.sqrt(252))
    assert columns["sortino"][0] == pytest.approx((mean - target) * 252 / (downside * math.sqrt(252)))
    assert columns["cumulative_return"][0] == pytest.approx(values[-1] / 100 - 1)
    # The worst fall is the first one, 110 -> 100.1; 100.1 * 1.10 = 110.11 is back above the peak.
    assert columns["max_drawdown"][0] == pytest.approx(-0.09)
    assert columns["max_drawdown_peak"][0] == dates[1]
    assert columns["max_drawdown_trough"][0] == dates[2]
    assert columns["max_drawdown_recovery"][0] == dates[3]


def test_nineteen_returns_are_one_too_few():
    columns, reasons = figures_of(alternating(19), weekdays("2025-01-02", 20))

    assert columns["observations"][0] == 19
    assert math.isnan(columns["volatility"][0])
    assert reasons[0]["volatility"] == nulls.TOO_FEW_RETURNS


def test_month_year_and_ytd_starts_use_the_last_observation_on_or_before():
    dates = np.array(
        ["2023-03-15", "2023-12-29", "2024-02-28", "2024-02-29", "2024-03-28", "2024-03-29"], dtype="datetime64[D]"
    )
    values = np.array([[100.0, 125.0, 118.0, 120.0, 128.0, 130.0]])

    columns, _ = figures_of(values, dates)

    assert columns["return_1d"][0] == pytest.approx(130 / 128 - 1)
    assert columns["return_1m"][0] == pytest.approx(130 / 120 - 1)  # 2024-02-29, one month before 03-29
    assert columns["return_ytd"][0] == pytest.approx(130 / 125 - 1)  # 2023-12-29, last date of 2023
    assert columns["return_1y"][0] == pytest.approx(130 / 100 - 1)  # 2023-03-15 <= 2023-03-29
    # The window is that year: it starts where return_1y does, so its cumulative return is the same.
    assert columns["window_start"][0] == np.datetime64("2023-03-15")
    assert columns["cumulative_return"][0] == pytest.approx(columns["return_1y"][0])


def test_months_before_clips_to_month_end():
    days = np.array(["2024-03-31", "2024-02-29", "2025-01-15"], dtype="datetime64[D]")

    assert list(months_before(days, 1)) == list(
        np.array(["2024-02-29", "2024-01-29", "2024-12-15"], dtype="datetime64[D]")
    )
    assert months_before(days, 12)[1] == np.datetime64("2023-02-28")


def test_risk_figures_cover_the_last_twelve_months_and_annualise_over_them():
    # A wild first year, then a year of returns alternating +1% and -1% on weekdays.
    calm = alternating(299)
    wild = [200.0, 50.0] * 150
    dates = weekdays("2022-01-03", 600)
    values = np.array([wild + calm])

    columns, reasons = figures_of(values, dates)

    start = np.searchsorted(dates, months_before(dates[-1:], 12)[0], side="right") - 1
    window = values[0, start:]
    returns = window[1:] / window[:-1] - 1
    assert columns["window_start"][0] == dates[start]
    assert columns["window_end"][0] == dates[-1]
    assert columns["observations"][0] == len(returns)
    assert columns["periods_per_year"][0] == 252
    assert columns["volatility"][0] == pytest.approx(returns.std(ddof=1) * math.sqrt(252))
    assert columns["return_1y"][0] == pytest.approx(window[-1] / window[0] - 1)
    assert columns["annualised_return"][0] == pytest.approx((window[-1] / window[0]) ** (252 / len(returns)) - 1)
    assert columns["max_drawdown"][0] == pytest.approx((window / np.maximum.accumulate(window) - 1).min())
    assert columns["calmar"][0] == pytest.approx(columns["annualised_return"][0] / -columns["max_drawdown"][0])
    assert "annualised_return" not in reasons[0]
    assert "calmar" not in reasons[0]


def test_days_off_the_calendar_are_skipped_not_counted_as_flat():
    # Weekday values on an axis that also has weekends (another portfolio trades then).
    days = np.datetime64("2025-01-06") + np.arange(42)
    weekday = np.is_busday(days)
    own = np.array(alternating(int(weekday.sum()) - 1, up=0.02, down=-0.01))
    on_axis = np.full(len(days), np.nan)
    on_axis[weekday] = own
    carried = np.maximum.accumulate(np.where(weekday, np.arange(len(days)), 0))
    on_axis = on_axis[carried]  # carried forward over weekends, as the price history does

    skipped, _ = figures_of(on_axis, days, calendar=weekday)
    alone, _ = figures_of(own, days[weekday])

    for name in (
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "cumulative_return",
        "observations",
        "periods_per_year",
        "return_1d",
    ):
        assert skipped[name][0] == alone[name][0], name
    assert skipped["periods_per_year"][0] == 252
    assert skipped["observations"][0] == weekday.sum() - 1


def test_a_series_observed_at_weekends_annualises_over_365_days():
    days = np.datetime64("2025-01-06") + np.arange(30)

    columns, _ = figures_of(alternating(29), days)

    returns = np.array([0.01, -0.01] * 15)[:29]
    assert columns["periods_per_year"][0] == 365
    assert columns["volatility"][0] == pytest.approx(returns.std(ddof=1) * math.sqrt(365))


def test_constant_and_near_constant_values_have_no_ratios():
    dates = weekdays("2025-01-02", 30)
    noise = 1 + np.resize([1e-16, -1e-16, 2e-16], 30)  # floating-point noise, as a sum of many terms leaves
    values = np.array([np.full(30, 100.0), 100.0 * noise])

    columns, reasons = figures_of(values, dates, risk_free_rate=0.04)

    for row in range(2):
        assert columns["volatility"][row] == 0.0
        assert columns["max_drawdown"][row] == 0.0
        assert math.isnan(columns["sharpe"][row])
        assert reasons[row]["sharpe"] == nulls.ZERO_VOLATILITY
        assert math.isnan(columns["calmar"][row])
        assert np.isnat(columns["max_drawdown_peak"][row])
    # Against a positive risk-free rate every flat day is below target: Sortino is there, and negative.
    assert columns["sortino"][0] < 0


def test_flat_values_at_a_zero_rate_have_no_downside_to_divide_by():
    columns, reasons = figures_of([np.full(25, 50.0)], weekdays("2025-01-02", 25), risk_free_rate=0.0)

    assert columns["downside_deviation"][0] == 0.0
    assert reasons[0]["sortino"] == nulls.ZERO_DOWNSIDE


def test_missing_history_and_missing_value():
    dates = weekdays("2025-01-02", 3)
    values = np.array(
        [
            [np.nan, 50.0, 55.0],  # one held asset had no price on the first day
            [0.0, 0.0, 0.0],  # nothing priced held
        ]
    )

    columns, reasons = figures_of(values, dates)

    assert columns["return_1d"][0] == pytest.approx(0.1)
    assert columns["window_start"][0] == dates[1]
    assert columns["observations"][0] == 1
    assert all(reason == nulls.NO_VALUE for reason in reasons[1].values())
    assert set(reasons[1]) == {*performance_figures()}
    assert np.isnat(columns["window_end"][1])


def test_single_day_has_no_returns():
    columns, reasons = figures_of([[100.0]], np.array(["2025-01-02"], dtype="datetime64[D]"))

    assert all(math.isnan(columns[name][0]) for name in performance_figures())
    assert reasons[0]["return_1d"] == nulls.NO_HISTORY
    assert reasons[0]["cumulative_return"] == nulls.NO_RETURNS


def performance_figures():
    from portfolios.analytics.performance import FIGURES

    return FIGURES
