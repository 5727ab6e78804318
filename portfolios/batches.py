"""Splitting long id lists into fixed-size batches for queries and writes."""
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")

# Keeps every IN (...) list far below SQLite's and PostgreSQL's parameter limits.
QUERY_BATCH = 2000


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start:start + size]


def portfolio_chunks(ids: Sequence[int], on_progress: Callable[[int, int], None] | None = None
                     ) -> Iterator[Sequence[int]]:
    """Chunks of REFRESH_METRICS_CHUNK portfolio ids; once the caller is done with a chunk,
    on_progress(done, total) runs (and may raise to stop before the next one)."""
    done = 0
    for chunk in batched(ids, settings.REFRESH_METRICS_CHUNK):
        yield chunk
        done += len(chunk)
        if on_progress:
            on_progress(done, len(ids))
