"""Reading the holdings matrix and the portfolios a refresh should touch."""

import pytest
from django.contrib.auth import get_user_model

from portfolios.selectors.holdings import load_holdings, portfolio_ids_for_user, portfolio_ids_holding


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
