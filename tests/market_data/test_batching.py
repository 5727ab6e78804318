"""split_batches: provider-sized batches that keep order and lose nothing."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from market_data.batching import split_batches

symbols = st.lists(st.text(alphabet="ABCDEFGHIJ.", min_size=1, max_size=4), max_size=300)


@given(symbols=symbols, size=st.integers(min_value=1, max_value=130))
def test_batches_never_exceed_size_and_keep_every_symbol_once_in_order(symbols, size):
    batches = split_batches(symbols, size)

    assert all(0 < len(batch) <= size for batch in batches)
    assert [s for batch in batches for s in batch] == list(dict.fromkeys(symbols))


@given(symbols=st.lists(st.text(min_size=1), unique=True, min_size=1, max_size=300),
       size=st.integers(min_value=1, max_value=130))
def test_only_the_last_batch_may_be_short(symbols, size):
    batches = split_batches(symbols, size)

    assert len(batches) == -(-len(symbols) // size)
    assert all(len(batch) == size for batch in batches[:-1])


def test_size_below_one_is_refused():
    with pytest.raises(ValueError):
        split_batches(["AAPL"], 0)
