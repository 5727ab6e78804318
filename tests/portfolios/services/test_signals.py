"""Recalculating and storing asset signals."""

from datetime import date, timedelta

import pytest

from portfolios.models import Signal
from portfolios.services.signals import recalculate_signals

START = date(2024, 1, 1)


def history(first, middle, last, bars=253):
    return [first] + [middle] * (bars - 2) + [last]


@pytest.mark.django_db
def test_signals_stored_per_asset(make_asset):
    rising = make_asset("UP", history(100, 110, 121), start=START)
    falling = make_asset("DOWN", history(100, 90, 85), start=START)
    young = make_asset("NEW", [10, 11, 12], start=START)
    make_asset("NONE")

    assert recalculate_signals() == 3

    up = Signal.objects.get(asset=rising)
    trend = 121 / ((199 * 110 + 121) / 200) - 1
    assert up.action == "buy"
    assert up.as_of == START + timedelta(days=252)
    assert up.trend == pytest.approx(trend)
    assert up.momentum == pytest.approx(0.10)
    assert up.strength == pytest.approx((trend / 0.10 + 0.10 / 0.20) / 2)
    assert up.reason == "price 9.9% above 200-day average; 12-1m momentum +10.0%"
    assert Signal.objects.get(asset=falling).action == "sell"
    new = Signal.objects.get(asset=young)
    assert (new.action, new.strength, new.trend, new.reason) == ("hold", 0.0, None, "not enough history")


@pytest.mark.django_db
def test_only_requested_assets_and_updates_in_place(make_asset):
    asset = make_asset("UP", history(100, 110, 121), start=START)
    other = make_asset("OTHER", history(100, 110, 121), start=START)

    recalculate_signals(asset_ids=[asset.id])
    asset.bars.filter(date=START + timedelta(days=252)).update(close=80)
    recalculate_signals(asset_ids=[asset.id])

    assert Signal.objects.count() == 1
    assert not Signal.objects.filter(asset=other).exists()
    assert Signal.objects.get(asset=asset).trend == pytest.approx(80 / ((199 * 110 + 80) / 200) - 1)


@pytest.mark.django_db
def test_inactive_assets_are_skipped_by_default(make_asset):
    asset = make_asset("OLD", [1, 2, 3])
    asset.is_active = False
    asset.save()

    assert recalculate_signals() == 0
