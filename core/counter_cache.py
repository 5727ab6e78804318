"""A Django cache backend of numbers in a database table, each change one atomic statement.

Why it exists: the rate limits (refresh/services/rate_limits.py) count with a cache: a window's
``add`` and ``incr``, and the cooldown's ``add``, ``get``, ``set`` and ``delete``. Without Redis
those counters must still be shared by every process (``gunicorn -w 4``), and the database is
the store every process already has. No stock backend serves: Django's DatabaseCache increments
with a get and then a set (two processes both read 4 and both write 5), lets two processes
``add`` over the same expired row, stores pickled text the database cannot add to, and counts
the whole table on every write to decide whether to cull; LocMemCache and FileBasedCache are per
process or per machine.

How: every operation is one SQL statement, atomic on SQLite (3.35+) and PostgreSQL alike.
``add`` inserts, or on a conflicting key replaces the row only if it has expired (INSERT ... ON
CONFLICT DO UPDATE ... WHERE); ``incr`` is UPDATE ... SET value = value + n RETURNING value.
They run on the caller's connection, so inside a transaction they commit or roll back with it
(a second connection could not work there: SQLite has one writer). Values are numbers only
(counters and times) and whole numbers read back as int. Expiry follows Python's clock, as
the limiter's windows do. Expired rows are deleted at most once per CULL_INTERVAL seconds
(60) in each process and thread, at most CULL_BATCH (1000) at a time, found through the expiry
index; the delete runs after the caller's transaction commits and skips rows another
transaction holds, so it never waits. The table belongs to one cache alias: ``clear`` empties it.
"""

import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.db import connections, router, transaction

from core.models import COUNTER_KEY_MAX_LENGTH, SharedCounter

_EXACT_INTEGERS = 2**53  # a float holds every whole number up to this
_LIVE = "(expires_at IS NULL OR expires_at > %s)"
_UPSERT = (
    'INSERT INTO {table} ("key", value, expires_at) VALUES (%s, %s, %s) ON CONFLICT ("key") '
    "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)


class CounterCache(BaseCache):
    """Numbers every process shares, in the SharedCounter table (see the module docstring)."""

    def __init__(self, location, params):
        super().__init__(params)
        options = params.get("OPTIONS", {})
        self.cull_interval = float(options.get("CULL_INTERVAL", 60))
        self.cull_batch = int(options.get("CULL_BATCH", 1000))
        self._next_cull = 0.0

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        added = self._run(
            _UPSERT + " WHERE {table}.expires_at <= %s RETURNING 1",
            [self._key(key, version), _stored(value), self._expiry(timeout), self._now()],
            rows=True,
        )
        self._cull_soon()
        return bool(added)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> None:
        self._run(_UPSERT, [self._key(key, version), _stored(value), self._expiry(timeout)])
        self._cull_soon()

    def get(self, key, default=None, version=None):
        found = self._run(
            f'SELECT value FROM {{table}} WHERE "key" = %s AND {_LIVE}',  # noqa: S608 - {table} is filled from _meta in _run, values are parameters
            [self._key(key, version), self._now()],
            rows=True,
        )
        return _number(found[0][0]) if found else default

    def incr(self, key, delta=1, version=None):
        """Add ``delta`` in the database itself; ValueError if the key is missing or expired."""
        key = self._key(key, version)
        changed = self._run(
            f'UPDATE {{table}} SET value = value + %s WHERE "key" = %s AND {_LIVE} RETURNING value',  # noqa: S608 - as in get
            [_stored(delta), key, self._now()],
            rows=True,
        )
        if not changed:
            raise ValueError(f"Key '{key}' not found")
        return _number(changed[0][0])

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        return (
            self._run(
                f'UPDATE {{table}} SET expires_at = %s WHERE "key" = %s AND {_LIVE}',  # noqa: S608 - as in get
                [self._expiry(timeout), self._key(key, version), self._now()],
            )
            > 0
        )

    def delete(self, key, version=None) -> bool:
        """Delete the row, expired or not; whether a live entry was deleted."""
        deleted = self._run(
            f'DELETE FROM {{table}} WHERE "key" = %s RETURNING {_LIVE}',  # noqa: S608 - as in get
            [self._key(key, version), self._now()],
            rows=True,
        )
        return bool(deleted and deleted[0][0])

    def clear(self) -> None:
        self._run("DELETE FROM {table}", [])

    def cull(self) -> int:
        """Delete up to CULL_BATCH expired rows, skipping rows another transaction has locked; how many."""
        skip_locked = " FOR UPDATE SKIP LOCKED" if self._connection().features.has_select_for_update_skip_locked else ""
        return self._run(
            'DELETE FROM {table} WHERE "key" IN (SELECT "key" FROM {table} '  # noqa: S608 - only a fixed locking clause is formatted in
            f"WHERE expires_at <= %s LIMIT %s{skip_locked})",
            [self._now(), self.cull_batch],
        )

    def _cull_soon(self) -> None:
        """Cull after this write's transaction commits, if this instance has not culled for CULL_INTERVAL."""
        if time.monotonic() < self._next_cull:
            return
        self._next_cull = time.monotonic() + self.cull_interval
        transaction.on_commit(self.cull, using=self._connection().alias, robust=True)

    def _key(self, key, version) -> str:
        key = self.make_and_validate_key(key, version=version)
        if len(key) > COUNTER_KEY_MAX_LENGTH:
            raise ValueError(f"Cache key longer than {COUNTER_KEY_MAX_LENGTH} characters: {key[:40]}…")
        return key

    def _now(self):
        return self._moment(time.time())

    def _expiry(self, timeout):
        expires = self.get_backend_timeout(timeout)
        return None if expires is None else self._moment(expires)

    def _moment(self, epoch: float):
        moment = datetime.fromtimestamp(epoch, tz=UTC if settings.USE_TZ else None)
        return self._connection().ops.adapt_datetimefield_value(moment)

    @staticmethod
    def _connection():
        return connections[router.db_for_write(SharedCounter)]

    def _run(self, sql: str, params: list, *, rows: bool = False):
        """Execute one statement on the table; its rows, or how many rows it changed."""
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(sql.format(table=connection.ops.quote_name(SharedCounter._meta.db_table)), params)
            return cursor.fetchall() if rows else cursor.rowcount


def _stored(value) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"CounterCache holds numbers, not {type(value).__name__}")
    if (isinstance(value, int) and abs(value) > _EXACT_INTEGERS) or not math.isfinite(value):
        raise ValueError(f"CounterCache cannot hold {value!r} exactly")
    return float(value)


def _number(stored) -> int | float:
    stored = float(stored)  # SQLite may hand back a whole REAL as an integer
    return int(stored) if stored.is_integer() else stored
