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
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from refresh.models import RefreshKind, ScopeLease

logger = logging.getLogger("refresh.scopes")
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
    family_a, family_b = a.split(":")[0], b.split(":")[0]
    return family_b in _CONFLICTS.get(family_a, set())


def serialise_lease_changes() -> None:
    """Within the current transaction, wait for any other worker changing leases."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])


def held_scopes() -> list[str]:
    """Scopes under a live lease; expired leases belong to lost workers and do not count."""
    return list(ScopeLease.objects.filter(expires_at__gt=timezone.now()).values_list("scope", flat=True))


def lease_expiry():
    return timezone.now() + timedelta(seconds=settings.REFRESH_LEASE_SECONDS)


def grant_lease(*, run) -> ScopeLease:
    """Give the run its scope; the caller has checked for conflicts under the lease lock."""
    ScopeLease.objects.filter(scope=run.scope, expires_at__lte=timezone.now()).delete()
    return ScopeLease.objects.create(scope=run.scope, run=run, expires_at=lease_expiry())


def renew_lease(*, run) -> bool:
    """Extend the run's lease; False when it was lost (expired and taken or reaped)."""
    expires = lease_expiry()
    renewed = ScopeLease.objects.filter(run=run).update(expires_at=expires)
    if renewed:
        type(run).objects.filter(pk=run.pk).update(lease_expires_at=expires)
    return bool(renewed)


def release_lease(*, run) -> None:
    ScopeLease.objects.filter(run=run).delete()


class LeaseKeeper:
    """Renews a run's lease from a background thread for as long as this process lives.

    The worker's main thread may spend longer than a lease in one database write or one
    calculation; the heartbeat keeps the lease alive meanwhile, and stops with the process,
    so a killed worker's lease lapses and the reaper takes over.
    """

    def __init__(self, run):
        self.run = run
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run.refresh_id}", daemon=True)

    def start(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        interval = settings.REFRESH_LEASE_SECONDS / 3
        held_until = time.monotonic() + settings.REFRESH_LEASE_SECONDS
        try:
            while not self._stopped.wait(interval):
                try:
                    if not renew_lease(run=self.run):
                        self.lost.set()
                        return
                    held_until = time.monotonic() + settings.REFRESH_LEASE_SECONDS
                except Exception:  # noqa: BLE001 - a passing database error must not kill the heartbeat
                    logger.warning("could not renew the lease of %s", self.run.refresh_id, exc_info=True)
                    connection.close()  # reconnect on the next beat
                    if time.monotonic() >= held_until:
                        self.lost.set()  # the lease may have lapsed and been reaped: stop the run
                        return
        finally:
            connections.close_all()
