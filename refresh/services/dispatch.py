"""Handing runs to django-q2 workers.

A queued task does not name a run: it claims the most urgent runnable one when a worker
picks it up. So the broker's first-in-first-out order never overrides run priorities, and
a task whose run was already taken simply finds the next one or nothing.
"""
from functools import lru_cache

from django.conf import settings
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
