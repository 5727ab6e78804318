"""django-q2 task entry points; each is one call into the services."""

from refresh.models import RunPriority
from refresh.services import deferred, execution, schedules


def execute_next_refresh(*, emergency_lane: bool = False) -> str | None:
    """Start the most urgent runnable run, if any (the emergency lane takes only emergencies)."""
    run = execution.execute_next_refresh(min_priority=RunPriority.EMERGENCY if emergency_lane else 0)
    return run.refresh_id if run else None


def start_deferred_run(*, refresh_id: str) -> str:
    """A deferred run's time has come (its one-off schedule, slightly early): queue it."""
    run = deferred.start_deferred_run(refresh_id)
    return f"{refresh_id} {run.status}" if run else f"{refresh_id} no longer scheduled"


def reap_lost_runs() -> int:
    """Fail runs whose worker stopped renewing its lease, and let the queue move on."""
    return execution.reap_lost_runs()


def scheduled_refresh(*, kind: str, mode: str, interval_minutes: int = 0, trading_hours_only: bool = False) -> str:
    """A routine refresh started by a django-q2 schedule."""
    run = schedules.trigger_scheduled_refresh(
        kind=kind, mode=mode, interval_minutes=interval_minutes, trading_hours_only=trading_hours_only
    )
    return f"{run.refresh_id} {run.status}" if run else "outside trading hours"
