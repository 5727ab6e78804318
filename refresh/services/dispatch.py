"""Handing runs to django-q2 workers.

A queued task does not name a run: it claims the most urgent runnable one when a worker
picks it up. So the broker's first-in-first-out order never overrides run priorities, and
a task whose run was already taken simply finds the next one or nothing.

Every run queues a pickup of its own, in its lane (and an emergency run in the reserved lane
too), so that as many runs start side by side as there are free workers.
"""

from functools import cache

from django.conf import settings
from django.db import transaction
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

EMERGENCY_CLUSTER = "emergency"


@cache
def _broker(cluster: str) -> Broker:
    """One broker (and so one Redis connection pool) per queue and process, not one per request."""
    return get_broker(cluster)


def _orm_alias() -> str | None:
    """The database alias of the ORM broker's queue; None with another broker or in sync mode."""
    if "orm" in settings.Q_CLUSTER and not settings.Q_CLUSTER.get("sync"):
        return str(settings.Q_CLUSTER["orm"])
    return None


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
    async_task(
        "refresh.tasks.execute_next_refresh",
        cluster=cluster,
        broker=_broker(cluster),
        task_name="refresh: emergency pickup" if emergency_lane else "refresh: pickup",
        **lane,
    )


def enqueue_pickup(*, emergency: bool = False) -> None:
    """Ask a worker to start the next runnable run; emergency runs also use the reserved lane."""
    for cluster, emergency_lane in _lanes(emergency=emergency):
        _queue_pickup(cluster, emergency_lane=emergency_lane)


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
