"""A queued run's standing: its place among the conflicting runs it waits for, and an ETA that
adds theirs to its own and moves as they finish."""

import time
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token

from refresh.models import RefreshRun, RunPriority, RunSource, RunStatus
from refresh.services.queue_estimates import queue_standing
from refresh.services.requests import request_refresh
from refresh.services.scopes import conflicting_scopes, conflicting_scopes_sql, scopes_conflict
from refresh.services.tracking import forget_duration_estimate, forget_memoised_estimates
from tests.refresh.test_api import BASE

SCOPES = ["all", "prices", "strategy", "benchmark", "portfolio:1", "portfolio:2"]


@pytest.mark.django_db
def test_the_conflicting_scopes_filter_agrees_with_scopes_conflict(demo):
    runs = {
        scope: RefreshRun.objects.create(
            kind="all", requested_role="system", source="command", scope=scope, dedup_key=scope
        )
        for scope in SCOPES
    }
    for scope in SCOPES:
        expected = {other for other in SCOPES if scopes_conflict(scope, other)}
        found = set(RefreshRun.objects.filter(conflicting_scopes(scope)).values_list("scope", flat=True))
        assert found == expected, scope
        condition, params = conflicting_scopes_sql(scope, "scope")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT scope FROM {RefreshRun._meta.db_table} WHERE {condition}", params)  # noqa: S608
            assert {row[0] for row in cursor.fetchall()} == expected, scope
    assert len(runs) == len(SCOPES)


def history(kind: str, mode: str, seconds: float, count: int = 3) -> None:
    """Finished runs that make the recent median duration of this kind and mode `seconds`."""
    now = timezone.now()
    for i in range(count):
        RefreshRun.objects.create(
            kind=kind,
            mode=mode,
            status=RunStatus.SUCCESS,
            requested_role="system",
            source="command",
            scope=kind,
            dedup_key=f"history-{kind}-{mode}-{i}",
            finished_at=now,
            duration_ms=int(seconds * 1000),
        )
    forget_memoised_estimates()


def queue(kind: str, *, mode: str = "incremental", priority: int | None = None, **kwargs) -> RefreshRun:
    run, created = request_refresh(
        kind=kind, mode=mode, requested_by=None, source=RunSource.COMMAND, priority=priority, enqueue=False, **kwargs
    )
    assert created
    return run


def seconds_from_now(moment) -> float:
    return (moment - timezone.now()).total_seconds()


@pytest.mark.django_db
def test_three_queued_runs_behind_a_running_one_are_ordered_and_add_up(demo, admin_api, alice):
    history("prices", "incremental", 20)
    history("prices", "smart", 10)
    history("benchmark", "incremental", 30)
    running = queue("prices", mode="incremental")
    RefreshRun.objects.filter(pk=running.pk).update(
        status=RunStatus.IN_PROGRESS,
        started_at=timezone.now(),
        estimated_completion=timezone.now() + timedelta(seconds=15),
    )
    first = queue("prices", mode="smart")
    second = queue("benchmark")
    third = queue("prices", mode="smart", symbols=["AAPL"])
    unrelated = queue("strategy")  # a scope the prices and benchmark runs do not touch

    bodies = [admin_api.get(f"{BASE}/runs/{run.refresh_id}/").json() for run in (first, second, third)]

    assert [body["queue_position"] for body in bodies] == [1, 2, 3]
    etas = [seconds_from_now(parse_datetime(body["estimated_completion"])) for body in bodies]
    assert etas == sorted(etas)
    assert etas[0] == pytest.approx(15 + 10, abs=2)
    assert etas[1] == pytest.approx(15 + 10 + 30, abs=2)
    assert etas[2] == pytest.approx(15 + 10 + 30 + 10, abs=2)
    assert queue_standing(unrelated).position == 1
    # The status body (what a trigger and a poll answer) says the same.
    status = admin_api.post(f"{BASE}/runs/{third.refresh_id}/cancel/").json()
    assert status["status"] == "cancelled"
    assert "queue_position" not in status
    assert admin_api.get(f"{BASE}/runs/{second.refresh_id}/").json()["queue_position"] == 2


@pytest.mark.django_db
def test_a_more_urgent_run_goes_ahead_and_a_finished_one_drops_out(demo, admin_api):
    history("prices", "incremental", 20)
    waiting = queue("prices")
    urgent = queue("prices", mode="smart", priority=RunPriority.HIGH)

    assert queue_standing(urgent).position == 1
    assert queue_standing(waiting).position == 2
    RefreshRun.objects.filter(pk=urgent.pk).update(status=RunStatus.SUCCESS, finished_at=timezone.now())
    assert queue_standing(waiting).position == 1
    body = admin_api.get(f"{BASE}/runs/{waiting.refresh_id}/").json()
    assert seconds_from_now(parse_datetime(body["estimated_completion"])) == pytest.approx(20, abs=2)


@pytest.mark.django_db
def test_the_trigger_answers_with_the_standing(admin_api, run_tasks):
    admin_api.post(f"{BASE}/prices", {}, format="json")
    body = admin_api.post(f"{BASE}/benchmark", {}, format="json").json()

    assert body["queue_position"] == 2
    listed = admin_api.get(f"{BASE}/runs/").json()["results"]
    assert all("queue_position" not in run for run in listed)


@pytest.mark.qcluster
def test_queued_estimates_hold_within_half_of_the_observed_completion(live_server, workers, admin, settings):
    """A real worker with a warm history: three runs queued behind a running one finish in
    order, each within 50% of the estimate its status gave while it waited."""
    settings.REFRESH_COOLDOWN_SECONDS = 0
    settings.REFRESH_BURST_RATE = ""
    workers.start(MOCK_PROVIDER_LATENCY="1.0")  # each run waits a second for its quote
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}

    def post(kind, body):
        response = requests.post(f"{live_server.url}{BASE}/{kind}", json=body, headers=headers, timeout=10)
        assert response.status_code == HTTPStatus.ACCEPTED, response.text
        return response.json()["refresh_id"]

    def status(refresh_id):
        return requests.get(f"{live_server.url}{BASE}/runs/{refresh_id}/", headers=headers, timeout=10).json()

    def wait_finished(refresh_id):
        deadline = time.monotonic() + 60
        while status(refresh_id)["status"] in ("queued", "in_progress"):
            assert time.monotonic() < deadline, workers.logs()
            time.sleep(0.1)

    for symbol in ("AAPL", "MSFT", "GOOGL"):  # the warm history: three benchmark-sized prices runs
        wait_finished(post("prices", {"symbols": [symbol], "priority": "low"}))
    ids = [post("prices", {"symbols": [symbol], "priority": "low"}) for symbol in ("AMZN", "NVDA", "META", "JPM")]
    deadline = time.monotonic() + 30
    while status(ids[0])["status"] == "queued":
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.05)
    forget_duration_estimate(kind="prices", mode="incremental")  # this process's, made before the history
    standings = [status(refresh_id) for refresh_id in ids[1:]]
    assert [body["queue_position"] for body in standings] == [1, 2, 3], standings
    # The API prints whole seconds; the service's own figures are to the microsecond.
    expected = [queue_standing(RefreshRun.objects.get(refresh_id=refresh_id)) for refresh_id in ids[1:]]
    assert [standing.position for standing in expected] == [1, 2, 3]
    asked = timezone.now()
    for refresh_id in ids[1:]:
        wait_finished(refresh_id)
    finished = [RefreshRun.objects.get(refresh_id=refresh_id).finished_at or asked for refresh_id in ids[1:]]
    assert finished == sorted(finished)
    for standing, done in zip(expected, finished, strict=True):
        estimate, actual = (standing.estimated_completion - asked).total_seconds(), (done - asked).total_seconds()
        assert abs(estimate - actual) <= 0.5 * actual, (expected, finished, asked)
