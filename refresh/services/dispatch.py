"""Handing runs to django-q2 workers.

A queued task does not name a run: it claims the most urgent runnable one when a worker
picks it up. So the broker's first-in-first-out order never overrides run priorities, and
a task whose run was already taken simply finds the next one or nothing.
"""
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

EMERGENCY_CLUSTER = "emergency"


@lru_cache(maxsize=None)
def _broker(cluster: str):
    """One broker (and so one Redis connection pool) per queue and process, not one per request."""
    return get_broker(cluster)


def enqueue_pickup(*, emergency: bool = False) -> None:
    """Ask a worker to start the next runnable run; emergency runs also use the reserved lane."""
    if emergency:
        async_task("refresh.tasks.execute_next_refresh", emergency_lane=True, cluster=EMERGENCY_CLUSTER,
                   broker=_broker(EMERGENCY_CLUSTER), task_name="refresh: emergency pickup")
    # Name the normal lane: inside an emergency worker the default queue is the emergency one.
    async_task("refresh.tasks.execute_next_refresh", cluster=settings.Q_CLUSTER["name"],
               broker=_broker(settings.Q_CLUSTER["name"]), task_name="refresh: pickup")


def enqueue_pickup_on_commit(*, emergency: bool = False) -> None:
    """Queue a pickup for the run the current transaction records.

    With the ORM broker the queue lives in the same database, so the task row is written in
    this transaction: one commit instead of two (SQLite has one writer at a time), and the
    task exists exactly when the run does. Another broker, or sync mode (which would run
    the task at once), is told only after the commit; if it is down then, the reaper
    re-queues the run.
    """
    if "orm" in settings.Q_CLUSTER and not settings.Q_CLUSTER.get("sync") and transaction.get_connection(
            settings.Q_CLUSTER["orm"]).in_atomic_block:
        enqueue_pickup(emergency=emergency)
    else:
        transaction.on_commit(lambda: enqueue_pickup(emergency=emergency), robust=True)
