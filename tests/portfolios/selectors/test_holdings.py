"""Reading the holdings matrix and the portfolios a refresh should touch."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from portfolios.models import RebalanceProposal
from portfolios.selectors.holdings import load_holdings, portfolio_ids_for_user, portfolio_ids_holding, read_positions
from portfolios.selectors.shared import shared_reads
from portfolios.services.rebalance import apply_rebalances


@pytest.mark.django_db
def test_holdings_matrix_and_portfolio_lookups(make_asset, make_portfolio):
    a, b, c = make_asset("AAA"), make_asset("BBB"), make_asset("CCC")
    first = make_portfolio({a: (2, 15), b: (1, 20)}, name="First")
    other_user = get_user_model().objects.create_user(username="bob")
    second = make_portfolio({b: (4, 70)}, name="Second", owner=other_user)

    quantities, costs = load_holdings(portfolio_ids=[second.id, first.id], asset_ids=[a.id, b.id, c.id])

    assert quantities.tolist() == [[0, 4, 0], [2, 1, 0]]
    assert costs.tolist() == [[0, 70, 0], [15, 20, 0]]
    assert portfolio_ids_holding(asset_ids=[a.id]) == [first.id]
    assert portfolio_ids_holding(asset_ids=[a.id, b.id]) == sorted([first.id, second.id])
    assert portfolio_ids_for_user(user_id=other_user.id) == [second.id]


@pytest.mark.django_db
def test_holdings_are_read_once_within_shared_reads_until_a_rebalance_changes_them(
    make_asset, make_portfolio, django_assert_num_queries
):
    """A recalculation's passes share each chunk's holdings read; applying rebalances (strategies
    go before metrics) makes the later passes read the new holdings."""
    a = make_asset("AAA")
    portfolio = make_portfolio({a: (2, 15)}, targets={"AAA": 1.0})
    RebalanceProposal.objects.create(
        strategy=portfolio.strategy,
        asset=a,
        current_weight=0.5,
        target_weight=1.0,
        quantity=Decimal(3),
        price=Decimal(10),
        value=Decimal(30),
        created_at=timezone.now(),
    )
    with shared_reads():
        first = read_positions(portfolio_ids=[portfolio.id])
        with django_assert_num_queries(0):
            assert read_positions(portfolio_ids=[portfolio.id]) is first
        with pytest.raises(ValueError, match="read-only"):
            first.quantities[0] = 1.0  # shared by every pass: nobody may change it
        assert apply_rebalances(strategy_ids=[portfolio.strategy.id]) == 1
        after = read_positions(portfolio_ids=[portfolio.id])
    outside = read_positions(portfolio_ids=[portfolio.id])

    assert (first.quantities.tolist(), after.quantities.tolist()) == ([2.0], [5.0])
    assert outside is not after  # outside a block every call reads the database
    assert outside.quantities.tolist() == [5.0]
