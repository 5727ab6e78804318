"""Orchestration with real qcluster processes: dedup, priorities, crashes, stops, schedules."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task
from rest_framework.authtoken.models import Token

from market_data.models import PriceBar
from refresh.models import RefreshRun, RunSource, RunStatus, ScopeLease
from refresh.services.demo import seed_demo
from refresh.services.execution import cancel_run, reap_lost_runs
from refresh.services.requests import request_refresh
from tests.refresh.conftest import wait_until

pytestmark = pytest.mark.qcluster


def finished(run, timeout=60):
    wait_until(lambda: RefreshRun.objects.get(pk=run.pk).is_finished, timeout=timeout, message=f"{run} to finish")
    run.refresh_from_db()
    return run


def request(kind, **kwargs):
    """As the demo admin from the command line: these tests are about the queue, not rate limits."""
    admin = get_user_model().objects.get(username="admin")
    run, _ = request_refresh(kind=kind, requested_by=admin, source=RunSource.COMMAND, **kwargs)
    return run


def test_fifty_parallel_identical_requests_create_one_run(live_server, workers, admin):
    workers.start(MOCK_PROVIDER_LATENCY=2)
    workers.start(MOCK_PROVIDER_LATENCY=2)
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}

    def post(_):
        return requests.post(
            f"{live_server.url}/api/v1/manual/refresh/prices", json={"mode": "full"}, headers=headers, timeout=30
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    ids = {r.json()["refresh_id"] for r in responses}
    assert len(ids) == 1, ids
    assert sorted(r.status_code for r in responses) == [HTTPStatus.OK] * 49 + [HTTPStatus.ACCEPTED]
    assert RefreshRun.objects.count() == 1
    assert finished(RefreshRun.objects.get()).status == RunStatus.SUCCESS, workers.logs()


def test_queued_runs_start_in_priority_order_and_emergency_does_not_wait(workers, settings):
    seed_demo(users=5, assets=10, years=1)
    users = {u.username: u.pk for u in get_user_model().objects.all()}
    settings.REFRESH_EMERGENCY_LANE = True  # this process queues the emergency's pickup in that lane too
    workers.start(MOCK_PROVIDER_LATENCY=2, REFRESH_EMERGENCY_LANE="true")
    workers.start(MOCK_PROVIDER_LATENCY=2, Q_CLUSTER_NAME="emergency", REFRESH_EMERGENCY_LANE="true")
    busy = request("portfolio", target_user_id=users["bob"], priority="medium")
    wait_until(
        lambda: RefreshRun.objects.get(pk=busy.pk).status == RunStatus.IN_PROGRESS, message="the busy run to start"
    )
    low = request("portfolio", target_user_id=users["alice"], priority="low")
    medium = request("portfolio", target_user_id=users["carol"], priority="medium")
    high = request("portfolio", target_user_id=users["user00000"], priority="high")
    emergency = request("benchmark", priority="emergency")
    for run in (busy, low, medium, high, emergency):
        assert finished(run, timeout=90).status == RunStatus.SUCCESS, workers.logs()
    assert emergency.started_at < busy.finished_at
    assert busy.finished_at <= high.started_at < medium.started_at < low.started_at


def test_an_emergency_runs_on_the_normal_workers_when_no_emergency_cluster_runs(workers):
    seed_demo(users=2, assets=10, years=1)
    workers.start()
    run = request("benchmark", priority="emergency")
    assert finished(run).status == RunStatus.SUCCESS, workers.logs()
    assert get_broker("emergency").queue_size() == 0


def test_waiting_runs_start_side_by_side_when_workers_are_free(workers):
    """Each run has its own pickup, so free workers start waiting runs at once, not one after another."""
    seed_demo(users=4, assets=10, years=1)
    workers.start(MOCK_PROVIDER_LATENCY=1.5, Q_WORKERS=3)
    targets = get_user_model().objects.filter(portfolios__isnull=False).distinct()[:3]
    runs = [finished(run, timeout=90) for run in [request("portfolio", target_user_id=user.pk) for user in targets]]

    assert [run.status for run in runs] == [RunStatus.SUCCESS] * 3, workers.logs()
    assert max(run.started_at for run in runs) < min(run.finished_at for run in runs), [
        (run.started_at, run.finished_at) for run in runs
    ]


def test_a_worker_killed_mid_run_is_reaped_and_the_next_run_succeeds(workers):
    seed_demo(users=3, assets=10, years=1)
    bars_before = dict(PriceBar.objects.values_list("asset__symbol").annotate(n=Count("id")))
    cluster = workers.start(MOCK_PROVIDER_LATENCY=5, REFRESH_LEASE_SECONDS=3)
    doomed = request("prices", mode="full")
    wait_until(
        lambda: RefreshRun.objects.get(pk=doomed.pk).current_step == "Fetching data", message="the run to be fetching"
    )
    workers.kill(cluster)
    doomed.refresh_from_db()
    assert doomed.status == RunStatus.IN_PROGRESS

    def lease_lapsed() -> bool:
        expires = RefreshRun.objects.get(pk=doomed.pk).lease_expires_at
        assert expires is not None
        return timezone.now() > expires

    wait_until(
        lease_lapsed,
        timeout=10,
        message="the lease to lapse",
    )
    again = request("prices", mode="full")  # identical: it must not join the lost run
    assert again.pk != doomed.pk
    doomed.refresh_from_db()
    assert doomed.status == RunStatus.FAILED
    assert "worker lost" in doomed.errors
    assert not ScopeLease.objects.exists()
    assert reap_lost_runs() == 0  # nothing left for the reaper
    assert dict(PriceBar.objects.values_list("asset__symbol").annotate(n=Count("id"))) == bars_before

    workers.start()
    assert finished(again).status == RunStatus.SUCCESS, workers.logs()


def test_timeout_and_cancel_end_runs_and_free_their_scopes(workers):
    seed_demo(users=3, assets=10, years=1)
    workers.start(MOCK_PROVIDER_LATENCY=1.5, REFRESH_TIME_LIMIT_SECONDS="prices=1")
    slow = finished(request("prices", mode="full"))
    assert slow.status == RunStatus.TIMEOUT
    assert "time limit" in slow.errors[-1]

    cancelled = request("benchmark", mode="full")
    wait_until(
        lambda: RefreshRun.objects.get(pk=cancelled.pk).status == RunStatus.IN_PROGRESS,
        message="the benchmark run to start",
    )
    cancel_run(run=cancelled, requested_by=None)
    assert finished(cancelled).status == RunStatus.CANCELLED
    assert not ScopeLease.objects.exists()


def test_a_scheduled_run_after_an_equivalent_manual_run_is_skipped(workers):
    seed_demo(users=3, assets=10, years=1)
    workers.start()
    manual = finished(request("prices"))
    assert manual.status == RunStatus.SUCCESS, workers.logs()
    async_task("refresh.tasks.scheduled_refresh", kind="prices", mode="incremental", interval_minutes=15)
    skipped = wait_until(
        lambda: RefreshRun.objects.filter(source=RunSource.SCHEDULE).first(), message="the scheduled run"
    )
    assert skipped.status == RunStatus.SKIPPED
    assert manual.refresh_id in skipped.params["skip_reason"]
    assert skipped.steps.get(name="Skipped").message == skipped.params["skip_reason"]
    assert RefreshRun.objects.filter(status=RunStatus.SUCCESS).count() == 1

    RefreshRun.objects.filter(pk=manual.pk).update(finished_at=timezone.now() - timedelta(minutes=16))
    async_task("refresh.tasks.scheduled_refresh", kind="prices", mode="incremental", interval_minutes=15)
    routine = wait_until(
        lambda: RefreshRun.objects.filter(source=RunSource.SCHEDULE).exclude(status=RunStatus.SKIPPED).first(),
        message="the second scheduled run",
    )
    assert finished(routine).status == RunStatus.SUCCESS
    assert routine.requested_role == "system"
