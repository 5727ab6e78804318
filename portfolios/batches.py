"""Splitting long id lists into fixed-size batches for queries and writes."""

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Keeps every IN (...) list far below SQLite's and PostgreSQL's parameter limits.
QUERY_BATCH = 2000


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]
