"""Splitting symbol lists into provider-sized batches."""
from collections.abc import Sequence


def split_batches(symbols: Sequence[str], size: int) -> list[list[str]]:
    """Split symbols into batches of at most `size`, keeping order.

    Duplicates are dropped (first occurrence wins): a provider charges per symbol, and a
    repeated symbol in one request comes back ambiguous.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    unique = list(dict.fromkeys(symbols))
    return [unique[i:i + size] for i in range(0, len(unique), size)]
