"""Handing runs to django-q2 workers.

A queued task does not name a run: it claims the most urgent runnable one when a worker
picks it up. So the broker's first-in-first-out order never overrides run priorities, and
a task whose run was already taken simply finds the next one or nothing.
"""
from django.conf import settings
from django_q.tasks import async_task

EMERGENCY_CLUSTER = "emergency"


def enqueue_pickup(*, emergency: bool = False) -> None:
    """Ask a worker to start the next runnable run; emergency runs also use the reserved lane."""
    if emergency:
        async_task("refresh.tasks.execute_next_refresh", emergency_lane=True, cluster=EMERGENCY_CLUSTER,
                   task_name="refresh: emergency pickup")
    # Name the normal lane: inside an emergency worker the default queue is the emergency one.
    async_task("refresh.tasks.execute_next_refresh", cluster=settings.Q_CLUSTER["name"],
               task_name="refresh: pickup")
