"""Tilting, renormalising, valuing and rebalance trades against values worked out by hand."""

import numpy as np
import pytest

from portfolios.analytics.allocation import rebalance_trades, tilt_weights
from portfolios.analytics.valuation import portfolio_values


def test_tilt_and_renormalise():
    tilted = tilt_weights(np.array([[0.6, 0.4]]), np.array([1.0, -0.5]), np.array([0.5]))

    # 0.6 * (1 + 0.5) = 0.9 and 0.4 * (1 - 0.25) = 0.3, then divided by 1.2.
    assert tilted[0] == pytest.approx([0.75, 0.25])


def test_tilt_clips_negative_weights_at_zero():
    tilted = tilt_weights(np.array([[0.5, 0.5], [0.0, 0.0]]), np.array([-1.0, 0.2]), np.array([2.0, 1.0]))

    # 0.5 * (1 - 2) = -0.5 -> 0; 0.5 * 1.4 = 0.7 -> all of the weight.
    assert tilted[0] == pytest.approx([0.0, 1.0])
    assert tilted[1] == pytest.approx([0.0, 0.0])


def test_rebalance_quantities_for_drifted_assets():
    quantities = np.array([[10.0, 5.0, 0.0]])
    prices = np.array([50.0, 100.0, 20.0])
    tilted = np.array([[0.72, 0.24, 0.04]])

    trades = rebalance_trades(quantities, prices, tilted, np.array([0.05]))

    # Values 500, 500, 0 of 1000: weights 0.5, 0.5, 0.
    assert trades["current_weight"][0] == pytest.approx([0.5, 0.5, 0.0])
    assert list(trades["trade"][0]) == [True, True, False]  # 0.04 drift is within the threshold
    assert trades["quantity"][0] == pytest.approx([(720 - 500) / 50, (240 - 500) / 100, 0.0])
    assert trades["value"][0] == pytest.approx([220.0, -260.0, 0.0])


def test_no_trades_within_threshold_or_without_price():
    quantities = np.array([[10.0, 5.0], [0.0, 0.0]])
    trades = rebalance_trades(
        quantities, np.array([50.0, np.nan]), np.array([[0.9, 0.1], [0.5, 0.5]]), np.array([0.05, 0.05])
    )

    # Only A is priced, so it is the whole portfolio: weight 1 vs 0.9 drifts, B has no price.
    assert list(trades["trade"][0]) == [True, False]
    assert trades["quantity"][0, 0] == pytest.approx((0.9 * 500 - 500) / 50)
    assert not trades["trade"][1].any()  # an empty portfolio has nothing to rebalance


def test_portfolio_values_wait_for_every_held_asset():
    closes = np.array([[10.0, 11.0, 12.0], [np.nan, 5.0, 6.0], [np.nan, np.nan, np.nan]])

    values = portfolio_values(np.array([[2.0, 1.0, 3.0], [2.0, 0.0, 0.0]]), closes)

    # The third asset never had a price, so it counts as 0 rather than blanking the row.
    assert values[0] == pytest.approx([np.nan, 27.0, 30.0], nan_ok=True)
    assert values[1] == pytest.approx([20.0, 22.0, 24.0])
