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
    return [unique[i : i + size] for i in range(0, len(unique), size)]


def split_batches_to_credits(
    symbols: Sequence[str], *, batch_size: int, credits: int
) -> tuple[list[list[str]], list[str]]:
    """As many batches as `credits` pay for (one credit a symbol), and the symbols left over.

    No batch exceeds `batch_size`, all batches together cost at most `credits`, and batches
    plus leftovers hold every symbol exactly once, in order.
    """
    unique = list(dict.fromkeys(symbols))
    affordable = max(credits, 0)
    return split_batches(unique[:affordable], batch_size), unique[affordable:]
