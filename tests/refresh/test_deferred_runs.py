"""Deferred runs: recorded as scheduled, entering the queue at their time, cancellable before."""

import json
from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.models import Schedule

from refresh import tasks
from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services import deferred
from refresh.services.execution import reap_lost_runs
from refresh.services.requests import request_refresh
from tests.refresh.test_api import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_cooldown(settings):
    """Several requests for one kind in a row; the cooldown is tested in test_rate_limits."""
    settings.REFRESH_COOLDOWN_SECONDS = 0


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_deferred_run_is_scheduled_with_its_time_and_a_one_off_schedule(admin_api):
    at = (timezone.now() + timedelta(hours=3)).replace(microsecond=0)

    response = admin_api.post(f"{BASE}/all", {"mode": "full", "run_at": iso(at)}, format="json")

    assert response.status_code == HTTPStatus.ACCEPTED
    body = response.json()
    assert body["status"] == "scheduled"
    assert parse_datetime(body["run_at"]) == at
    eta = parse_datetime(body["estimated_completion"])
    assert eta is not None
    assert eta > at
    assert body["queue_position"] is None
    run = RefreshRun.objects.get(refresh_id=body["refresh_id"])
    schedule = Schedule.objects.get(name=f"deferred {run.refresh_id}")
    assert (schedule.func, schedule.schedule_type) == (deferred.START_TASK, Schedule.ONCE)
    assert schedule.next_run == at - deferred.SCHEDULER_LEAD
    listed = admin_api.get(f"{BASE}/runs/?status=scheduled").json()["results"]
    assert [r["refresh_id"] for r in listed] == [run.refresh_id]
    # Deferred runs take no part in deduplication until their time: an identical one starts now.
    now = admin_api.post(f"{BASE}/all", {"mode": "full"}, format="json").json()
    assert now["status"] == "queued"


@pytest.mark.parametrize(
    ("client", "run_at", "status", "code"),
    [
        ("alice_api", "+1h", HTTPStatus.FORBIDDEN, "forbidden"),  # users may not defer
        ("admin_api", "2026-12-08T02:00:00", HTTPStatus.BAD_REQUEST, "invalid_request"),  # no zone
        ("admin_api", "-1m", HTTPStatus.BAD_REQUEST, "invalid_run_at"),
        ("admin_api", "+8d", HTTPStatus.BAD_REQUEST, "invalid_run_at"),
        ("admin_api", "tomorrow", HTTPStatus.BAD_REQUEST, "invalid_request"),
    ],
)
def test_who_may_defer_and_when(request, alice, client, run_at, status, code):
    offsets = {"+1h": timedelta(hours=1), "-1m": timedelta(minutes=-1), "+8d": timedelta(days=8)}
    value = iso(timezone.now() + offsets[run_at]) if run_at in offsets else run_at
    api = request.getfixturevalue(client)
    path = f"{BASE}/portfolio/{alice.pk}" if client == "alice_api" else f"{BASE}/prices"

    response = api.post(path, {"run_at": value}, format="json")

    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert not RefreshRun.objects.exists()
    assert not Schedule.objects.filter(func=deferred.START_TASK).exists()


def test_a_deferred_run_cannot_be_waited_for(admin_api):
    at = iso(timezone.now() + timedelta(hours=1))
    response = admin_api.post(f"{BASE}/prices", {"run_at": at, "wait": 5}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not RefreshRun.objects.exists()


def test_a_deferred_run_cancelled_before_its_time_never_starts(admin_api):
    body = admin_api.post(f"{BASE}/benchmark", {"run_at": iso(timezone.now() + timedelta(hours=1))}, format="json")
    refresh_id = body.json()["refresh_id"]

    cancelled = admin_api.post(f"{BASE}/runs/{refresh_id}/cancel/").json()

    assert cancelled["status"] == "cancelled"
    assert not Schedule.objects.filter(name=f"deferred {refresh_id}").exists()
    assert tasks.start_deferred_run(refresh_id=refresh_id) == f"{refresh_id} no longer scheduled"
    assert RefreshRun.objects.get(refresh_id=refresh_id).status == RunStatus.CANCELLED


def test_a_deferred_run_starts_not_before_its_time_and_within_a_second_after(admin_api, run_tasks):
    at = timezone.now() + timedelta(seconds=1.5)
    refresh_id = admin_api.post(f"{BASE}/benchmark", {"run_at": iso(at)}, format="json").json()["refresh_id"]
    stored = RefreshRun.objects.get(refresh_id=refresh_id).run_at
    assert stored is not None

    # What the one-off schedule runs, up to SCHEDULER_LEAD early: it waits for the time itself.
    outcome = run_tasks(tasks.start_deferred_run, refresh_id=refresh_id)

    run = RefreshRun.objects.get(refresh_id=refresh_id)
    assert outcome == f"{refresh_id} queued"
    assert run.status == RunStatus.SUCCESS
    assert run.started_at is not None
    assert stored <= run.started_at < stored + timedelta(seconds=1)
    assert "Entered the queue" in run.steps.values_list("name", flat=True)


def test_at_its_time_an_identical_active_run_is_joined(admin, admin_api):
    at = iso(timezone.now() + timedelta(hours=1))
    later = admin_api.post(f"{BASE}/strategy", {"run_at": at}, format="json").json()
    active = admin_api.post(f"{BASE}/strategy", {}, format="json").json()

    run = deferred.enter_queue(RefreshRun.objects.get(refresh_id=later["refresh_id"]))

    assert run.status == RunStatus.SKIPPED
    assert active["refresh_id"] in run.params["skip_reason"]
    assert admin_api.get(f"{BASE}/runs/{run.refresh_id}/").json()["status"] == "skipped"


def test_the_reaper_queues_a_deferred_run_whose_schedule_was_lost(admin, run_tasks):
    run, _ = request_refresh(
        kind="benchmark",
        requested_by=admin,
        source=RunSource.API,
        run_at=timezone.now() + timedelta(minutes=5),
    )
    Schedule.objects.filter(func=deferred.START_TASK).delete()
    RefreshRun.objects.filter(pk=run.pk).update(run_at=timezone.now() - timedelta(minutes=2))

    run_tasks(reap_lost_runs)

    assert RefreshRun.objects.get(pk=run.pk).status == RunStatus.SUCCESS


def test_the_command_defers_with_at(demo):
    out = StringIO()
    at = iso(timezone.now() + timedelta(hours=2))

    call_command("refresh", "--prices", "--at", at, "--json", stdout=out)

    body = json.loads(out.getvalue())
    assert body["status"] == "scheduled"
    assert RefreshRun.objects.get().source == RunSource.COMMAND


def test_the_admin_lists_deferred_runs(admin_api, client, admin):
    at = iso(timezone.now() + timedelta(hours=1))
    deferred_id = admin_api.post(f"{BASE}/benchmark", {"run_at": at}, format="json").json()["refresh_id"]
    now_id = admin_api.post(f"{BASE}/strategy", {}, format="json").json()["refresh_id"]
    client.force_login(admin)

    page = client.get(reverse("admin:refresh_refreshrun_changelist"), {"deferred": "scheduled"}).content.decode()

    assert deferred_id in page
    assert now_id not in page
