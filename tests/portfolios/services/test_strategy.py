"""Recalculating strategies: allocations, proposals and applying them."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from portfolios.models import Allocation, Holding, ProposalStatus, RebalanceProposal, Signal
from portfolios.services.rebalance import apply_rebalance
from portfolios.services.strategy import recalculate_strategies


def give_signal(asset, strength):
    Signal.objects.create(
        asset=asset,
        as_of=date(2025, 3, 4),
        action="hold",
        strength=strength,
        reason="test",
        calculated_at=timezone.now(),
    )


@pytest.fixture
def tilted(make_asset, make_portfolio):
    """Holds 500 of A and 500 of B; targets 60/40 tilted by signals +1 and -0.5 to 75/25."""
    a = make_asset("AAA", [48, 50], start=date(2025, 3, 3))
    b = make_asset("BBB", [90, 100], start=date(2025, 3, 3))
    give_signal(a, 1.0)
    give_signal(b, -0.5)
    portfolio = make_portfolio(
        {a: (10, 400), b: (5, 400)},
        targets={"AAA": 0.6, "BBB": 0.4},
        tilt=Decimal("0.5"),
        rebalance_threshold=Decimal("0.05"),
    )
    return portfolio, a, b


@pytest.mark.django_db
def test_allocations_and_proposals_without_applying(tilted):
    portfolio, a, b = tilted

    counts = recalculate_strategies(refresh_id="run-1")

    assert counts == {"allocations": 2, "proposals": 2, "applied": 0}
    allocation = Allocation.objects.get(strategy=portfolio.strategy, asset=a)
    assert (allocation.target_weight, allocation.current_weight) == (0.6, 0.5)
    assert allocation.tilted_weight == pytest.approx(0.9 / 1.2)
    buy = RebalanceProposal.objects.get(asset=a)
    sell = RebalanceProposal.objects.get(asset=b)
    # Buy (0.75 * 1000 - 500) / 50 = 5 A; sell (0.25 * 1000 - 500) / 100 = -2.5 B.
    assert (buy.quantity, buy.price, buy.value) == (Decimal("5"), Decimal("50"), Decimal("250.00"))
    assert (sell.quantity, sell.value) == (Decimal("-2.5"), Decimal("-250.00"))
    assert {buy.status, sell.status} == {ProposalStatus.PROPOSED}
    assert buy.refresh_id == "run-1"
    assert buy.target_weight == pytest.approx(0.75)
    assert sorted(Holding.objects.values_list("quantity", flat=True)) == [Decimal(5), Decimal(10)]


@pytest.mark.django_db
def test_recalculating_supersedes_open_proposals(tilted):
    recalculate_strategies()
    recalculate_strategies()

    assert RebalanceProposal.objects.filter(status=ProposalStatus.SUPERSEDED).count() == 2
    assert RebalanceProposal.objects.filter(status=ProposalStatus.PROPOSED).count() == 2
    assert Allocation.objects.count() == 2


@pytest.mark.django_db
def test_apply_changes_holdings_and_records_proposals(tilted):
    portfolio, a, b = tilted

    counts = recalculate_strategies(apply=True, refresh_id="run-2")

    assert counts == {"allocations": 2, "proposals": 2, "applied": 2}
    holding_a = Holding.objects.get(portfolio=portfolio, asset=a)
    holding_b = Holding.objects.get(portfolio=portfolio, asset=b)
    assert (holding_a.quantity, holding_a.cost_basis) == (Decimal(15), Decimal("650.00"))  # cost + 250 bought
    assert (holding_b.quantity, holding_b.cost_basis) == (Decimal("2.5"), Decimal("200.00"))  # half sold
    applied = RebalanceProposal.objects.filter(status=ProposalStatus.APPLIED)
    assert applied.count() == 2
    assert all(p.applied_at is not None and p.refresh_id == "run-2" for p in applied)


@pytest.mark.django_db
def test_untargeted_holdings_are_sold_and_missing_targets_bought(make_asset, make_portfolio):
    a = make_asset("AAA", [50])
    old = make_asset("OLD", [20])
    portfolio = make_portfolio({old: (50, 900)}, targets={"AAA": 1.0, "MISSING": 0.0})

    counts = recalculate_strategies()
    applied = apply_rebalance(strategy=portfolio.strategy, refresh_id="manual")

    assert counts["proposals"] == 2
    assert applied == 2
    assert not Holding.objects.filter(asset=old).exists()
    bought = Holding.objects.get(portfolio=portfolio, asset=a)
    assert (bought.quantity, bought.cost_basis) == (Decimal(20), Decimal("1000.00"))  # 1000 / 50
    assert apply_rebalance(strategy=portfolio.strategy, refresh_id="again") == 0


@pytest.mark.django_db
def test_within_threshold_no_proposals_and_only_requested(tilted, make_asset, make_portfolio):
    c = make_asset("CCC", [10])
    balanced = make_portfolio({c: (1, 10)}, name="Balanced", targets={"CCC": 1.0})
    progress = []

    counts = recalculate_strategies(
        portfolio_ids=[balanced.id], apply=True, on_progress=lambda done, total: progress.append((done, total))
    )

    assert counts == {"allocations": 1, "proposals": 0, "applied": 0}
    assert progress == [(1, 1)]
    assert not Allocation.objects.filter(strategy=tilted[0].strategy).exists()


@pytest.mark.django_db
def test_progress_per_chunk(tilted, make_portfolio, settings):
    settings.REFRESH_METRICS_CHUNK = 2
    _, a, _ = tilted
    for i in range(2):
        make_portfolio({a: (1, 50)}, name=f"P{i}", targets={"AAA": 1.0})
    progress = []

    recalculate_strategies(on_progress=lambda done, total: progress.append((done, total)))

    assert progress == [(2, 3), (3, 3)]


@pytest.mark.django_db
def test_allocations_of_dropped_assets_are_removed(tilted):
    portfolio, a, b = tilted
    recalculate_strategies()
    portfolio.holdings.filter(asset=b).delete()
    portfolio.strategy.target_weights = {"AAA": 1.0}
    portfolio.strategy.save()

    counts = recalculate_strategies()

    assert counts["allocations"] == 1
    assert list(Allocation.objects.values_list("asset_id", flat=True)) == [a.id]


@pytest.mark.django_db
def test_unchanged_allocations_keep_their_row_while_changed_ones_are_rewritten_and_stale_ones_go(
    tilted, make_asset, make_portfolio, row_versions
):
    portfolio, a, b = tilted
    c = make_asset("CCC", [10, 10], start=date(2025, 3, 3))
    steady = make_portfolio({c: (1, 10)}, name="Steady", targets={"CCC": 1.0})
    recalculate_strategies()
    before = row_versions(Allocation, "id")
    portfolio.holdings.filter(asset=b).delete()
    portfolio.strategy.target_weights = {"AAA": 1.0}
    portfolio.strategy.save()

    recalculate_strategies()

    after = row_versions(Allocation, "id")
    ids = dict(Allocation.objects.values_list("asset_id", "id"))
    assert set(ids) == {a.id, c.id}  # the allocation to BBB, no longer targeted or held, is gone
    assert after[ids[c.id]] == before[ids[c.id]]  # the steady strategy's: same row, same calculated_at
    assert after[ids[a.id]][0] > before[ids[a.id]][0]  # AAA's target changed: rewritten, newly stamped
    assert Allocation.objects.get(strategy=steady.strategy).tilted_weight == 1.0


@pytest.mark.django_db
def test_malformed_target_weights_are_ignored(make_asset, make_portfolio):
    a = make_asset("AAA", [50])
    b = make_asset("BBB", [50])
    make_portfolio({a: (1, 50), b: (1, 50)}, targets={"AAA": "lots", "BBB": "0.5"})

    counts = recalculate_strategies()

    # AAA counts as untargeted, so all of its 50% weight is a drift to sell.
    assert counts == {"allocations": 2, "proposals": 2, "applied": 0}
    assert RebalanceProposal.objects.get(asset=a).quantity == Decimal(-1)
    assert RebalanceProposal.objects.get(asset=b).quantity == Decimal(1)
