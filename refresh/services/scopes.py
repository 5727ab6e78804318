"""Scopes a run locks, which scopes conflict, and the leases that hold them.

A lease is a database row, so every worker on every machine sharing the database sees it.
Acquisition is serialised (a PostgreSQL advisory lock; SQLite's IMMEDIATE transactions
already serialise writers), so two conflicting runs can never both hold their scopes.

Conflicts (symmetric):
- ``all`` conflicts with every scope.
- ``prices`` conflicts with ``prices``, every ``portfolio:<user>`` and ``benchmark``
  (they all write quotes or bars).
- ``portfolio:<user>`` conflicts with the same user's scope, ``prices`` and ``strategy``
  (a strategy may change that user's holdings).
- ``strategy`` conflicts with ``strategy`` and every ``portfolio:<user>``.
- ``benchmark`` conflicts with ``benchmark`` and ``prices``.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from core.heartbeat import Heartbeat
from refresh.models import RefreshKind, RefreshRun, ScopeLease

_ADVISORY_LOCK_KEY = 0x5245_4652  # "REFR": one key for all lease changes.
_CONFLICTS = {
    "prices": {"prices", "portfolio", "benchmark"},
    "portfolio": {"prices", "strategy"},
    "strategy": {"strategy", "portfolio"},
    "benchmark": {"benchmark", "prices"},
}


def scope_for(*, kind: str, target_user_id: int | None) -> str:
    """The scope a run of this kind locks."""
    if kind == RefreshKind.PORTFOLIO:
        return f"portfolio:{target_user_id}"
    return str(kind)


def scopes_conflict(a: str, b: str) -> bool:
    """Whether runs holding scopes a and b may not run at the same time."""
    if a == b or "all" in (a, b):
        return True
    family_a, family_b = a.split(":", maxsplit=1)[0], b.split(":", maxsplit=1)[0]
    return family_b in _CONFLICTS.get(family_a, set())


def _conflict_terms(scope: str) -> tuple[list[str], bool] | None:
    """The scopes that conflict with this one as (exact names, every ``portfolio:`` too); None: all do."""
    if scope == "all":
        return None
    others = _CONFLICTS.get(scope.split(":", maxsplit=1)[0], set())
    return [scope, "all", *sorted(others - {"portfolio"})], "portfolio" in others


def conflicting_scopes(scope: str) -> Q:
    """A filter on ``RefreshRun.scope`` for the scopes that conflict with this one (``scopes_conflict`` in SQL)."""
    terms = _conflict_terms(scope)
    if terms is None:
        return Q()
    names, any_portfolio = terms
    condition = Q(scope__in=names)
    if any_portfolio:
        condition |= Q(scope__startswith="portfolio:")
    return condition


def conflicting_scopes_sql(scope: str, column: str) -> tuple[str, list[str]]:
    """``conflicting_scopes`` as an SQL condition on ``column`` with its parameters, for a raw query."""
    terms = _conflict_terms(scope)
    if terms is None:
        return "1 = 1", []
    names, any_portfolio = terms
    condition = f"{column} IN ({', '.join(['%s'] * len(names))})"
    if any_portfolio:
        return f"({condition} OR {column} LIKE %s)", [*names, "portfolio:%"]
    return condition, names


def serialise_lease_changes() -> None:
    """Within the current transaction, wait for any other worker changing leases."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])


def held_scopes() -> list[str]:
    """Scopes under a live lease; expired leases belong to lost workers and do not count."""
    return list(ScopeLease.objects.filter(expires_at__gt=timezone.now()).values_list("scope", flat=True))


def lease_expiry() -> datetime:
    return timezone.now() + timedelta(seconds=settings.REFRESH_LEASE_SECONDS)


def grant_lease(*, run: RefreshRun) -> ScopeLease:
    """Give the run its scope; the caller has checked for conflicts under the lease lock."""
    ScopeLease.objects.filter(scope=run.scope, expires_at__lte=timezone.now()).delete()
    return ScopeLease.objects.create(scope=run.scope, run=run, expires_at=lease_expiry())


def renew_lease(*, run: RefreshRun) -> bool:
    """Extend the run's lease; False when it was lost (expired and taken or reaped)."""
    expires = lease_expiry()
    renewed = ScopeLease.objects.filter(run=run).update(expires_at=expires)
    if renewed:
        RefreshRun.objects.filter(pk=run.pk).update(lease_expires_at=expires)
    return bool(renewed)


def release_lease(*, run: RefreshRun) -> None:
    ScopeLease.objects.filter(run=run).delete()


def keep_lease(*, run: RefreshRun) -> Heartbeat:
    """Renew the run's lease from a background thread until stopped; ``lost`` says it was lost."""
    return Heartbeat(
        lambda: renew_lease(run=run), seconds=settings.REFRESH_LEASE_SECONDS, name=f"lease-{run.refresh_id}"
    ).start()
