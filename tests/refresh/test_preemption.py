"""Emergency pre-emption: a less urgent running run on a conflicting scope makes way between
batches, keeps what it saved, and resumes from the queue once the emergency run is done; when
every worker is busy on other scopes, one less urgent running run yields its worker the same way."""

import threading
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from market_data.models import Asset, PriceBar, Quote
from refresh.errors import RunPreempted
from refresh.models import RefreshRun, RefreshStep, RunPriority, RunSource, RunStatus
from refresh.services.demo import seed_demo
from refresh.services.execution import claim_next_run, execute_claimed_run
from refresh.services.preemption import preempt_for
from refresh.services.requests import request_refresh
from refresh.services.run_control import reprioritise_run
from refresh.services.tracking import RunTracker
from tests.refresh.conftest import wait_until


def request(kind, *, priority=None, mode="incremental", **kwargs):
    admin = get_user_model().objects.get(username="admin")
    run, created = request_refresh(
        kind=kind, requested_by=admin, source=RunSource.API, priority=priority, mode=mode, **kwargs
    )
    assert created
    return run


@pytest.fixture
def no_cooldown(settings):
    settings.REFRESH_COOLDOWN_SECONDS = 0


def steps(run):
    return list(run.steps.values_list("name", flat=True))


def assert_made_way(long, emergency, *, asked, workers):
    """The emergency run started within 5 s of its request; the run that made way for it
    completed afterwards, every quote stored."""
    wait_until(
        lambda: RefreshRun.objects.get(pk=long.pk).status == RunStatus.SUCCESS,
        timeout=90,
        message="the run that made way to complete",
    )
    emergency.refresh_from_db()
    long.refresh_from_db()
    assert emergency.status == RunStatus.SUCCESS, workers.logs()
    assert emergency.started_at is not None
    assert (emergency.started_at - asked).total_seconds() < 5
    assert long.started_at >= emergency.finished_at  # resumed after it
    assert Quote.objects.count() == Asset.objects.count()  # nothing lost


@pytest.mark.django_db
def test_an_emergency_marks_only_less_urgent_running_runs_on_conflicting_scopes(demo, no_cooldown):
    prices = request("prices", priority="low")
    strategy = request("strategy", priority="high")
    for run in (prices, strategy):
        assert claim_next_run(run_id=run.pk) is not None

    emergency = request("benchmark", priority="emergency")  # conflicts with prices, not with strategy

    prices.refresh_from_db()
    strategy.refresh_from_db()
    assert prices.preempted_by == emergency
    assert strategy.preempted_by is None
    assert preempt_for(request("benchmark", priority="high", mode="smart")) == 0  # below emergency: nothing


@pytest.mark.django_db
def test_a_preempted_run_makes_way_then_resumes_after_the_emergency_with_nothing_lost(demo, no_cooldown):
    running = request("prices", priority="medium", mode="full")
    assert claim_next_run(run_id=running.pk) is not None
    emergency = request("benchmark", priority="emergency")

    # Tasks run inline here: the pickup the pre-empted run asks for starts the emergency run,
    # whose own end then resumes the pre-empted one.
    resumed = execute_claimed_run(RefreshRun.objects.get(pk=running.pk))

    emergency.refresh_from_db()
    assert emergency.status == resumed.status == RunStatus.SUCCESS
    names = steps(resumed)
    assert names.index("Pre-empted") < len(names) - 1  # it went on afterwards
    assert emergency.refresh_id in resumed.steps.get(name="Pre-empted").message
    assert names.count("Acquiring lock") == 2  # claimed twice
    assert emergency.started_at is not None
    assert resumed.started_at is not None
    assert emergency.finished_at is not None
    assert emergency.finished_at <= resumed.started_at
    assert resumed.preempted_by is None
    assert Quote.objects.count() == Asset.objects.count()
    assert PriceBar.objects.values("asset").distinct().count() == Asset.objects.count()


@pytest.mark.django_db
def test_raising_a_queued_run_to_emergency_preempts_too(demo, admin, no_cooldown):
    running = request("prices", priority="low")
    assert claim_next_run(run_id=running.pk) is not None
    waiting = request("benchmark", priority="high")

    reprioritise_run(run=waiting, requested_by=admin, priority="emergency")

    assert RefreshRun.objects.get(pk=running.pk).preempted_by_id == waiting.pk


@pytest.mark.qcluster
def test_an_emergency_preempts_a_running_run_within_seconds_and_it_completes_afterwards(workers, settings):
    seed_demo(users=2, assets=10, years=1)
    settings.REFRESH_COOLDOWN_SECONDS = 0
    workers.start(MOCK_PROVIDER_LATENCY=0.5, MARKET_DATA_CONCURRENCY=1)  # a call at a time, a checkpoint after each
    long = request("prices", priority="medium", mode="full")
    wait_until(
        lambda: RefreshRun.objects.get(pk=long.pk).current_step == "Fetching data",
        timeout=30,
        message="the long run to be fetching",
    )
    asked = timezone.now()
    emergency = request("benchmark", priority="emergency")

    assert_made_way(long, emergency, asked=asked, workers=workers)
    assert "Pre-empted" in steps(long)
    assert PriceBar.objects.values("asset").distinct().count() == Asset.objects.count()
    assert RunPriority(long.priority) == RunPriority.MEDIUM


# --- every worker busy: one less urgent run yields its worker -------------------------------


def running(kind, *, priority="low", holds_worker=True, **kwargs):
    """A run a worker (or the command) has claimed, and the tracker its checkpoints go through."""
    claimed = claim_next_run(run_id=request(kind, priority=priority, **kwargs).pk)
    assert claimed is not None
    return RunTracker(claimed, holds_worker=holds_worker)


def starve(run, *, seconds=3):
    """As if the run had been queued this long ago (the grace is 2 s)."""
    RefreshRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def yields_to(tracker):
    """The emergency run the tracked run makes way for at this checkpoint, or None."""
    try:
        tracker.checkpoint()
    except RunPreempted as stop:
        return stop.by
    return None


@pytest.fixture
def look_every_time(monkeypatch):
    """A running run looks for a starved emergency at every checkpoint, not twice a second."""
    monkeypatch.setattr("refresh.services.preemption.LOOK_SECONDS", 0)


@pytest.mark.django_db
def test_a_starved_emergency_takes_the_worker_of_exactly_one_busy_run_on_another_scope(
    demo, alice, bob, no_cooldown, look_every_time
):
    first = running("portfolio", target_user_id=alice.pk)
    second = running("portfolio", priority="medium", target_user_id=bob.pk)
    emergency = request("benchmark", priority="emergency")  # conflicts with neither
    assert RefreshRun.objects.filter(preempted_by=emergency).count() == 0

    assert yields_to(first) is None  # within the grace a free worker would have taken it
    starve(emergency)
    assert yields_to(first) == emergency.refresh_id
    assert yields_to(second) is None  # one worker is all it needs
    RefreshRun.objects.filter(pk=first.run.pk).update(status=RunStatus.QUEUED)  # requeued, still marked
    assert yields_to(second) is None
    assert list(RefreshRun.objects.filter(preempted_by=emergency)) == [first.run]


@pytest.mark.django_db
def test_only_a_queued_emergency_makes_a_run_yield_and_an_emergency_run_never_does(
    demo, alice, bob, no_cooldown, look_every_time
):
    low = running("portfolio", target_user_id=alice.pk)
    starve(request("benchmark", priority="high"))
    assert yields_to(low) is None

    urgent = running("portfolio", priority="emergency", target_user_id=bob.pk)
    emergency = request("benchmark", priority="emergency", mode="smart")
    starve(emergency)
    assert yields_to(urgent) is None  # not to another emergency
    assert yields_to(low) == emergency.refresh_id


@pytest.mark.django_db
def test_nothing_yields_for_an_emergency_once_it_has_started(demo, alice, no_cooldown):
    busy = running("portfolio", target_user_id=alice.pk)
    emergency = request("benchmark", priority="emergency")
    starve(emergency)
    assert claim_next_run(run_id=emergency.pk) is not None

    assert yields_to(busy) is None


@pytest.mark.django_db
def test_an_emergency_waiting_for_a_conflicting_run_takes_no_other_run_s_worker(demo, no_cooldown):
    prices = running("prices")  # holds what the benchmark needs
    strategy = running("strategy")  # does not
    emergency = request("benchmark", priority="emergency")
    starve(emergency)

    assert yields_to(strategy) is None
    with pytest.raises(RunPreempted) as stop:
        prices.checkpoint()
    assert (stop.value.by, stop.value.worker_busy) == (emergency.refresh_id, False)  # preempt_for's doing


@pytest.mark.django_db
def test_an_emergency_behind_a_running_emergency_takes_no_worker(demo, no_cooldown, look_every_time):
    running("prices", priority="emergency")
    strategy = running("strategy")
    starve(request("benchmark", priority="emergency"))

    assert yields_to(strategy) is None
    assert yields_to(strategy) is None


@pytest.mark.django_db
def test_a_run_raised_to_emergency_waits_the_grace_from_then(demo, admin, alice, no_cooldown, look_every_time):
    busy = running("portfolio", target_user_id=alice.pk)
    waiting = request("benchmark", priority="high")
    starve(waiting, seconds=60)
    reprioritise_run(run=waiting, requested_by=admin, priority="emergency")

    assert yields_to(busy) is None
    RefreshStep.objects.filter(run=waiting).update(started_at=timezone.now() - timedelta(seconds=3))
    assert yields_to(busy) == waiting.refresh_id


@pytest.mark.django_db
def test_a_run_the_command_executes_holds_no_worker_to_yield(demo, alice, no_cooldown):
    in_process = running("portfolio", target_user_id=alice.pk, holds_worker=False)
    starve(request("benchmark", priority="emergency"))

    assert yields_to(in_process) is None


@pytest.mark.django_db
def test_a_run_that_yielded_its_worker_resumes_after_the_emergency_with_nothing_lost(demo, no_cooldown):
    busy = request("prices", priority="medium", mode="full")
    assert claim_next_run(run_id=busy.pk) is not None
    emergency = request("strategy", priority="emergency")  # no conflict: it only lacks a worker
    starve(emergency)

    resumed = execute_claimed_run(RefreshRun.objects.get(pk=busy.pk))  # inline tasks, as above

    emergency.refresh_from_db()
    assert emergency.status == resumed.status == RunStatus.SUCCESS
    message = resumed.steps.get(name="Pre-empted").message
    assert emergency.refresh_id in message
    assert "every worker was busy" in message
    assert emergency.finished_at <= resumed.started_at
    assert resumed.preempted_by is None
    assert Quote.objects.count() == Asset.objects.count()
    assert PriceBar.objects.values("asset").distinct().count() == Asset.objects.count()


@pytest.mark.django_db(transaction=True)
def test_busy_runs_checking_at_the_same_moment_yield_one_worker(no_cooldown):
    seed_demo(users=3, assets=4, years=1)
    users = get_user_model().objects.filter(username__in=["alice", "bob", "carol"])
    # Committed here, so nothing may run them inline: each waits for its (pretend) worker.
    trackers = [running("portfolio", target_user_id=user.pk, enqueue=False) for user in users]
    emergency = request("benchmark", priority="emergency", enqueue=False)
    starve(emergency)
    at_once = threading.Barrier(len(trackers))
    answers = []

    def check(tracker):
        try:
            at_once.wait()
            answers.append(yields_to(tracker))
        finally:
            tracker.close()
            connection.close()

    threads = [threading.Thread(target=check, args=(tracker,)) for tracker in trackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers, key=str) == sorted([emergency.refresh_id, None, None], key=str)
    assert RefreshRun.objects.filter(preempted_by=emergency).count() == 1


@pytest.mark.qcluster
def test_with_its_one_worker_busy_an_emergency_on_a_free_scope_starts_within_seconds(live_server, workers, settings):
    seed_demo(users=2, assets=10, years=1)
    settings.REFRESH_COOLDOWN_SECONDS = 0
    # Q_WORKERS=1: one worker in all. A call per symbol, one at a time, a checkpoint after each:
    # the long run fetches for several seconds, well past the grace.
    workers.start(MOCK_PROVIDER_LATENCY=0.5, MARKET_DATA_CONCURRENCY=1, TWELVEDATA_BATCH_SIZE=1)
    long = request("prices", priority="medium", mode="full")
    wait_until(
        lambda: RefreshRun.objects.get(pk=long.pk).current_step == "Fetching data",
        timeout=30,
        message="the long run to be fetching",
    )
    admin = get_user_model().objects.get(username="admin")
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    asked = timezone.now()
    response = requests.post(  # strategy: no conflict with prices, so nothing but the worker is in its way
        f"{live_server.url}/api/v1/manual/refresh/strategy", json={"priority": "emergency"}, headers=headers, timeout=10
    )
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    emergency = RefreshRun.objects.get(refresh_id=response.json()["refresh_id"])

    assert_made_way(long, emergency, asked=asked, workers=workers)
    assert "every worker was busy" in long.steps.get(name="Pre-empted").message
    assert PriceBar.objects.values("asset").distinct().count() == Asset.objects.count()
    assert RunPriority(long.priority) == RunPriority.MEDIUM
