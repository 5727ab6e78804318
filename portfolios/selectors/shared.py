"""Reads shared by one recalculation's passes: the same prices and holdings read from the database once.

A full refresh re-tilts strategies, then values portfolios, then compares them with the
benchmark, chunk by chunk, and each pass reads the same chunk's holdings and the same assets'
prices; between passes they do not change (applying rebalances, which changes holdings,
forgets the holdings read). Within a shared_reads() block each such read happens once and is
handed out read-only; outside one, every call reads the database. Each block has a key, which
chunks of portfolios carry to other workers (services/chunks.py): a worker helping with one pass
stays in one block of its own while it helps with the next passes of the same block.
"""

import uuid
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
# The kinds of shared reads (forget_reads drops one kind once what it read is written to).
HOLDINGS = "holdings"
PRICES = "prices"
# What was read inside a shared_reads() block, by (kind, what was asked for).
_shared: ContextVar[dict[tuple[str, Hashable], object] | None] = ContextVar("shared_reads", default=None)
_key: ContextVar[str | None] = ContextVar("shared_reads_key", default=None)


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block, the same read is made once. A block inside another shares the outer one's reads."""
    if _shared.get() is not None:
        yield
        return
    token, key = _shared.set({}), _key.set(uuid.uuid4().hex)
    try:
        yield
    finally:
        _key.reset(key)
        _shared.reset(token)


def shared_reads_key() -> str | None:
    """The current shared_reads() block's key, unique to it; None outside a block."""
    return _key.get()


def read_once(kind: str, key: Hashable, load: Callable[[], T]) -> T:
    """load()'s result, read once per block for the same kind and key (each call loads outside a block).

    The result is shared by every reader: load must return it read-only (numpy arrays not writeable).
    """
    shared = _shared.get()
    if shared is None:
        return load()
    if (kind, key) not in shared:
        shared[kind, key] = load()
    return shared[kind, key]  # type: ignore[return-value]


def forget_reads(kind: str) -> None:
    """Drops the block's reads of one kind, once what they read has been written to."""
    shared = _shared.get()
    if shared is not None:
        for key in [key for key in shared if key[0] == kind]:
            del shared[key]
