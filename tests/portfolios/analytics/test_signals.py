"""The trend-momentum rule against values worked out by hand."""

import math

import numpy as np
import pytest

from portfolios.analytics.signals import signal_reason, trend_momentum


def closes(first: float, middle: float, last: float, bars: int = 253) -> np.ndarray:
    """bars closes: `first` 252 bars ago, `middle` in between, `last` today."""
    return np.array([first] + [middle] * (bars - 2) + [last])


def test_buy_signal():
    figures = trend_momentum(np.array([closes(100, 110, 121)]))

    sma_200 = (199 * 110 + 121) / 200
    trend = 121 / sma_200 - 1  # 0.09945
    momentum = 110 / 100 - 1  # price 21 bars ago / price 252 bars ago - 1
    assert figures["trend"][0] == pytest.approx(trend)
    assert figures["momentum"][0] == pytest.approx(momentum)
    assert figures["strength"][0] == pytest.approx((trend / 0.10 + momentum / 0.20) / 2)
    assert figures["strength"][0] == pytest.approx(0.74725, abs=1e-5)
    assert figures["action"][0] == "buy"
    assert signal_reason(trend=figures["trend"][0], momentum=figures["momentum"][0]) == (
        "price 9.9% above 200-day average; 12-1m momentum +10.0%"
    )


def test_sell_signal():
    figures = trend_momentum(np.array([closes(100, 90, 85)]))

    trend = 85 / ((199 * 90 + 85) / 200) - 1  # -0.05529
    assert figures["strength"][0] == pytest.approx((trend / 0.10 + -0.10 / 0.20) / 2)
    assert figures["action"][0] == "sell"
    assert signal_reason(trend=figures["trend"][0], momentum=figures["momentum"][0]) == (
        "price 5.5% below 200-day average; 12-1m momentum -10.0%"
    )


def test_scores_are_clipped_and_mild_moves_hold():
    figures = trend_momentum(
        np.array(
            [
                closes(100, 150, 300),  # trend and momentum far above their scales
                closes(100, 100, 101),  # trend ~1%, momentum 0
            ]
        )
    )

    assert figures["strength"][0] == 1.0
    assert figures["action"][0] == "buy"
    trend = 101 / ((199 * 100 + 101) / 200) - 1
    assert figures["strength"][1] == pytest.approx(trend / 0.10 / 2)
    assert figures["action"][1] == "hold"


def test_short_history_holds():
    # 252 closes reach back only 251 bars; momentum needs today plus the 252 before it.
    one_short = np.concatenate([[np.nan], closes(100, 150, 300, bars=252)])
    hundred_bars = np.concatenate([np.full(153, np.nan), closes(100, 150, 300, bars=100)])
    figures = trend_momentum(np.array([one_short, hundred_bars]))

    assert list(figures["action"]) == ["hold", "hold"]
    assert list(figures["strength"]) == [0.0, 0.0]
    assert math.isnan(figures["trend"][0])
    assert math.isnan(figures["momentum"][1])
    assert signal_reason(trend=figures["trend"][0], momentum=figures["momentum"][0]) == "not enough history"


def test_fewer_columns_than_the_rule_needs():
    figures = trend_momentum(np.full((2, 10), 100.0))

    assert list(figures["action"]) == ["hold", "hold"]
    assert not figures["enough"].any()
