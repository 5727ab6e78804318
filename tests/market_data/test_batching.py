"""split_batches and split_batches_to_credits: batches that keep order, lose nothing, stay in budget."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market_data.batching import split_batches, split_batches_to_credits

symbols = st.lists(st.text(alphabet="ABCDEFGHIJ.", min_size=1, max_size=4), max_size=300)


@given(symbols=symbols, size=st.integers(min_value=1, max_value=130))
def test_batches_never_exceed_size_and_keep_every_symbol_once_in_order(symbols, size):
    batches = split_batches(symbols, size)

    assert all(0 < len(batch) <= size for batch in batches)
    assert [s for batch in batches for s in batch] == list(dict.fromkeys(symbols))


@given(
    symbols=st.lists(st.text(min_size=1), unique=True, min_size=1, max_size=300),
    size=st.integers(min_value=1, max_value=130),
)
def test_only_the_last_batch_may_be_short(symbols, size):
    batches = split_batches(symbols, size)

    assert len(batches) == -(-len(symbols) // size)
    assert all(len(batch) == size for batch in batches[:-1])


def test_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0"):
        split_batches(["AAPL"], 0)


@given(
    symbols=symbols,
    size=st.integers(min_value=1, max_value=130),
    credits_each_minute=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=40),
)
def test_batches_sized_to_credits_never_exceed_size_or_credits_and_cover_every_symbol_once(
    symbols, size, credits_each_minute
):
    """Minute after minute with varying credits left, as the fetch step spends them."""
    pending = list(symbols)
    sent: list[str] = []
    for left in credits_each_minute:
        batches, pending = split_batches_to_credits(pending, batch_size=size, credits=left)

        assert all(0 < len(batch) <= size for batch in batches)
        assert sum(len(batch) for batch in batches) <= left
        sent.extend(symbol for batch in batches for symbol in batch)
    assert sent + pending == list(dict.fromkeys(symbols))
    assert len(set(sent)) == len(sent)


@given(
    symbols=st.lists(st.text(min_size=1), unique=True, max_size=300),
    size=st.integers(min_value=1, max_value=130),
    credits_left=st.integers(min_value=0, max_value=400),
)
def test_batches_spend_every_credit_they_can(symbols, size, credits_left):
    batches, left_over = split_batches_to_credits(symbols, batch_size=size, credits=credits_left)

    assert sum(len(batch) for batch in batches) == min(credits_left, len(symbols))
    assert len(left_over) == max(len(symbols) - credits_left, 0)
