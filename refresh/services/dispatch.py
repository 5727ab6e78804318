"""Handing runs to django-q2 workers.

A queued task does not name a run: it claims the most urgent runnable one when a worker
picks it up. So the broker's first-in-first-out order never overrides run priorities, and
a task whose run was already taken simply finds the next one or nothing.

On SQLite with the ORM broker a lane's pickups are shared: a run queued while the lane still
holds a pickup no worker has taken writes no task of its own, and a worker that takes a pickup
and starts a run queues the next one while runs still wait (``pass_pickup_on``). That saves
every request a second insert and its task's signing inside SQLite's single write lock, and
workers a stream of pickups that find nothing. It is safe because SQLite lets one writer in at
a time: the broker marks a task taken with a write, so a request's check, made inside its own
write transaction, sees the task either still waiting (its worker will then see the new run)
or taken (the request queues another). PostgreSQL runs those transactions side by side, and
Redis is told only after the commit, so there every run queues its own pickup.
"""
from functools import lru_cache

from django.conf import settings
from django.db import connections, transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

from refresh.models import RunPriority, WaitingPickup
from refresh.selectors import pickup_waiting, runs_waiting

EMERGENCY_CLUSTER = "emergency"


@lru_cache(maxsize=None)
def _broker(cluster: str):
    """One broker (and so one Redis connection pool) per queue and process, not one per request."""
    return get_broker(cluster)


def _orm_alias() -> str | None:
    """The database alias of the ORM broker's queue; None with another broker or in sync mode."""
    if "orm" in settings.Q_CLUSTER and not settings.Q_CLUSTER.get("sync"):
        return settings.Q_CLUSTER["orm"]
    return None


def pickups_are_shared() -> bool:
    """Whether a lane's waiting pickup serves every run queued after it (SQLite, ORM broker)."""
    alias = _orm_alias()
    return alias is not None and connections[alias].vendor == "sqlite"


_EMERGENCY_LANE = (EMERGENCY_CLUSTER, True)


def _lanes(*, emergency: bool) -> list[tuple[str, bool]]:
    """(cluster, is the emergency lane) of each lane a pickup goes to.

    An emergency run always gets a pickup in the normal lane too, where it goes first; the
    reserved lane only where an emergency cluster is said to run (REFRESH_EMERGENCY_LANE), so
    that no pickup waits in a queue nobody reads.
    """
    # Name the normal lane: inside an emergency worker the default queue is the emergency one.
    normal = (settings.Q_CLUSTER["name"], False)
    return [_EMERGENCY_LANE, normal] if emergency and settings.REFRESH_EMERGENCY_LANE else [normal]


def _queue_pickup(cluster: str, *, emergency_lane: bool) -> None:
    lane = {"emergency_lane": True} if emergency_lane else {}
    async_task("refresh.tasks.execute_next_refresh", cluster=cluster, broker=_broker(cluster),
               task_name="refresh: emergency pickup" if emergency_lane else "refresh: pickup", **lane)


def _share_pickups(lanes: list[tuple[str, bool]]) -> None:
    """Queue a pickup in each lane unless one is still waiting there, in one write transaction."""
    alias = settings.Q_CLUSTER["orm"]
    with transaction.atomic(using=alias, savepoint=False):
        for cluster, emergency_lane in lanes:
            if pickup_waiting(lane=cluster, using=alias):
                continue
            _queue_pickup(cluster, emergency_lane=emergency_lane)
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT last_insert_rowid()")  # the task's row: this connection's latest insert
                task_id = cursor.fetchone()[0]
            WaitingPickup.objects.using(alias).bulk_create(
                [WaitingPickup(lane=cluster, task_id=task_id)], update_conflicts=True, unique_fields=["lane"],
                update_fields=["task_id"])


def enqueue_pickup(*, emergency: bool = False) -> None:
    """Ask a worker to start the next runnable run; emergency runs also use the reserved lane."""
    lanes = _lanes(emergency=emergency)
    if pickups_are_shared():
        _share_pickups(lanes)
        return
    for cluster, emergency_lane in lanes:
        _queue_pickup(cluster, emergency_lane=emergency_lane)


def pass_pickup_on(*, min_priority: int = 0) -> None:
    """A worker took its lane's pickup and started a run: where pickups are shared, runs queued
    behind that pickup need the next one, so that other workers start them now rather than one
    after another. Elsewhere each run has its own pickup already."""
    if pickups_are_shared() and runs_waiting(min_priority=min_priority):
        _share_pickups([_EMERGENCY_LANE] if min_priority >= RunPriority.EMERGENCY else _lanes(emergency=False))


def enqueue_pickup_on_commit(*, emergency: bool = False) -> None:
    """Queue a pickup for the run the current transaction records.

    With the ORM broker the queue lives in the same database, so the task row is written in
    this transaction: one commit instead of two (SQLite has one writer at a time), and the
    task exists exactly when the run does. Another broker, or sync mode (which would run
    the task at once), is told only after the commit; if it is down then, the reaper
    re-queues the run.
    """
    alias = _orm_alias()
    if alias is not None and transaction.get_connection(alias).in_atomic_block:
        enqueue_pickup(emergency=emergency)
    else:
        transaction.on_commit(lambda: enqueue_pickup(emergency=emergency), robust=True)
