"""Queueing a run's pickup: one per run, in the run's own transaction with the ORM broker, after
the commit otherwise."""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from refresh.models import RefreshRun, RunSource
from refresh.services import access, dispatch, execution
from refresh.services.requests import request_refresh

orm_broker = pytest.mark.skipif("orm" not in settings.Q_CLUSTER, reason="the queue is not in the database here")
other_broker = pytest.mark.skipif("orm" in settings.Q_CLUSTER, reason="the queue is in the database here")


class Rollback(Exception):
    pass


@pytest.fixture
def queued_for_real(monkeypatch, settings):
    """Tasks go to the broker instead of running inline, as outside the tests."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}


@orm_broker
@pytest.mark.django_db
def test_orm_broker_writes_the_pickup_in_the_runs_transaction(queued_for_real):
    def request_then_roll_back():
        with transaction.atomic():
            _run, created = request_refresh(kind="all", requested_by=None, source=RunSource.COMMAND)
            assert created
            # Written beside the run, before anything committed...
            assert OrmQ.objects.filter(key=settings.Q_CLUSTER["name"]).count() == 1
            raise Rollback

    with pytest.raises(Rollback):
        request_then_roll_back()
    # ...so a run that never commits never leaves a task behind, and vice versa.
    assert not OrmQ.objects.exists()
    assert not RefreshRun.objects.exists()


@other_broker
@pytest.mark.django_db
def test_other_brokers_are_told_only_after_the_commit(queued_for_real, monkeypatch, django_capture_on_commit_callbacks):
    told = []
    monkeypatch.setattr(dispatch, "enqueue_pickup", lambda *, emergency=False: told.append(emergency))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        request_refresh(kind="all", requested_by=None, source=RunSource.COMMAND)
        assert told == []

    assert len(callbacks) == 1
    assert told == [False]


@pytest.mark.django_db
def test_sync_mode_runs_the_pickup_only_after_the_commit(monkeypatch, django_capture_on_commit_callbacks):
    told = []
    monkeypatch.setattr(dispatch, "enqueue_pickup", lambda *, emergency=False: told.append(emergency))

    with django_capture_on_commit_callbacks(execute=True):
        request_refresh(
            kind="all",
            requested_by=None,
            source=RunSource.COMMAND,
            priority="emergency",
            grants=frozenset({access.REQUEST_EMERGENCY}),
        )
        assert told == []

    assert told == [True]


LANE = settings.Q_CLUSTER["name"]


def request_portfolio(user):
    run, created = request_refresh(
        kind="portfolio", target_user_id=user.pk, requested_by=None, source=RunSource.COMMAND
    )
    assert created
    return run


@pytest.mark.django_db
def test_every_run_queues_its_own_pickup(queued_for_real, demo, django_capture_on_commit_callbacks, monkeypatch):
    lane = get_broker(LANE)
    lane.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        for user in get_user_model().objects.all()[:3]:
            request_portfolio(user)
    assert lane.queue_size() == 3
    monkeypatch.setattr(execution, "execute_claimed_run", lambda run, **kwargs: run)

    execution.execute_next_refresh()  # starting a run queues nothing more: the others have theirs

    assert lane.queue_size() == 3


@pytest.mark.django_db
def test_with_an_emergency_cluster_an_emergency_queues_a_pickup_in_each_lane(
    queued_for_real, demo, admin, settings, django_capture_on_commit_callbacks
):
    settings.REFRESH_EMERGENCY_LANE = True
    emergency_lane, normal_lane = get_broker(dispatch.EMERGENCY_CLUSTER), get_broker(LANE)
    for broker in (emergency_lane, normal_lane):
        broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        request_refresh(kind="benchmark", requested_by=admin, source=RunSource.COMMAND, priority="emergency")

    [(_task_id, emergency_payload)] = emergency_lane.dequeue()
    [(_task_id, normal_payload)] = normal_lane.dequeue()
    assert SignedPackage.loads(emergency_payload)["kwargs"] == {"emergency_lane": True}  # emergencies only
    assert SignedPackage.loads(normal_payload)["kwargs"] == {}


@pytest.mark.django_db
def test_without_an_emergency_cluster_an_emergency_leaves_nothing_in_its_lane(
    queued_for_real, demo, admin, django_capture_on_commit_callbacks
):
    lanes = get_broker(dispatch.EMERGENCY_CLUSTER), get_broker(settings.Q_CLUSTER["name"])
    for broker in lanes:
        broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        request_refresh(kind="benchmark", requested_by=admin, source=RunSource.COMMAND, priority="emergency")
    assert [broker.queue_size() for broker in lanes] == [0, 1]  # the normal workers take emergencies first
