"""Emergency pre-emption: a less urgent running run on a conflicting scope makes way between
batches, keeps what it saved, and resumes from the queue once the emergency run is done."""

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from market_data.models import Asset, PriceBar, Quote
from refresh.models import RefreshRun, RunPriority, RunSource, RunStatus
from refresh.services.demo import seed_demo
from refresh.services.execution import claim_next_run, execute_claimed_run
from refresh.services.preemption import preempt_for
from refresh.services.requests import request_refresh
from refresh.services.run_control import reprioritise_run
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

    wait_until(
        lambda: RefreshRun.objects.get(pk=long.pk).status == RunStatus.SUCCESS,
        timeout=90,
        message="the pre-empted run to complete",
    )

    emergency.refresh_from_db()
    long.refresh_from_db()
    assert emergency.status == RunStatus.SUCCESS, workers.logs()
    assert emergency.started_at is not None
    assert (emergency.started_at - asked).total_seconds() < 5
    assert "Pre-empted" in steps(long)
    assert long.started_at >= emergency.finished_at  # resumed after it
    assert Quote.objects.count() == Asset.objects.count()  # nothing lost
    assert PriceBar.objects.values("asset").distinct().count() == Asset.objects.count()
    assert RunPriority(long.priority) == RunPriority.MEDIUM
