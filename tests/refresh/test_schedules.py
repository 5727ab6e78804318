"""Schedules: installation, skipping after manual runs, manual takeover of queued schedule runs."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.utils import timezone
from django_q.models import Schedule

from refresh.models import RefreshRun, RunPriority, RunSource, RunStatus
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh
from refresh.services.schedules import install_schedules, schedules, trigger_scheduled_refresh


def test_install_schedules_is_idempotent(db):
    assert install_schedules() == len(schedules())
    install_schedules()
    assert Schedule.objects.count() == len(schedules())
    reaper = Schedule.objects.get(name="refresh: reap lost runs")
    assert (reaper.func, reaper.schedule_type, reaper.minutes) == ("refresh.tasks.reap_lost_runs", "I", 1)


def test_scheduled_run_is_skipped_after_an_equivalent_manual_run(demo, admin):
    manual, _ = request_refresh(kind="prices", requested_by=admin, source=RunSource.COMMAND, enqueue=False)
    execute_run_in_process(run=manual)
    skipped = trigger_scheduled_refresh(kind="prices", mode="incremental", interval_minutes=15)
    assert skipped.status == RunStatus.SKIPPED
    assert skipped.source == RunSource.SCHEDULE
    assert manual.refresh_id in skipped.params["skip_reason"]
    # A full manual run of everything covers an incremental prices schedule too.
    assert trigger_scheduled_refresh(kind="benchmark", mode="incremental", interval_minutes=15).status == "queued"


def test_scheduled_run_goes_ahead_once_the_interval_has_passed(demo, admin):
    manual, _ = request_refresh(kind="prices", requested_by=admin, source=RunSource.COMMAND, enqueue=False)
    execute_run_in_process(run=manual)
    RefreshRun.objects.filter(pk=manual.pk).update(finished_at=timezone.now() - timedelta(minutes=16))
    run = trigger_scheduled_refresh(kind="prices", mode="incremental", interval_minutes=15)
    assert (run.status, run.priority, run.requested_role) == (RunStatus.QUEUED, RunPriority.LOW, "system")


def test_trading_hours_schedule_waits_for_the_market(demo):
    with time_machine.travel(datetime(2026, 11, 28, 15, 0, tzinfo=UTC), tick=False):  # Saturday
        assert trigger_scheduled_refresh(kind="prices", mode="incremental", trading_hours_only=True) is None
    with time_machine.travel(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), tick=False):  # Mon 10:00 NY
        assert trigger_scheduled_refresh(kind="prices", mode="incremental", trading_hours_only=True) is not None


def test_a_manual_request_takes_over_a_queued_scheduled_run(demo, admin):
    scheduled = trigger_scheduled_refresh(kind="benchmark", mode="incremental")
    assert scheduled.priority == RunPriority.LOW
    run, created = request_refresh(
        kind="benchmark", requested_by=admin, source=RunSource.COMMAND, priority="high", enqueue=False
    )
    assert (run.pk, created) == (scheduled.pk, False)
    assert (run.source, run.priority, run.requested_by) == (RunSource.COMMAND, RunPriority.HIGH, admin)
    assert run.steps.filter(name="Taken over").exists()
    assert RefreshRun.objects.count() == 1

    run = execute_run_in_process(run=run)  # the request's checks come first, then the take-over, then the work
    assert [s.name for s in run.steps.order_by("position")][:4] == [
        "Validating request",
        "Checking permissions",
        "Taken over",
        "Acquiring lock",
    ]
    assert list(run.steps.order_by("position").values_list("position", flat=True)) == list(range(1, 10))
