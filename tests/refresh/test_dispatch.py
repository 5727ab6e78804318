"""Queueing a run's pickup: in the run's own transaction with the ORM broker (shared by the runs
queued behind it on SQLite), after the commit otherwise."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ

from refresh.models import RefreshRun, RunPriority, RunSource, RunStatus, WaitingPickup
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
    with pytest.raises(Rollback):
        with transaction.atomic():
            run, created = request_refresh(kind="all", requested_by=None, source=RunSource.COMMAND)
            assert created
            # Written beside the run, before anything committed...
            assert OrmQ.objects.filter(key=settings.Q_CLUSTER["name"]).count() == 1
            raise Rollback
    # ...so a run that never commits never leaves a task behind, and vice versa.
    assert not OrmQ.objects.exists()
    assert not RefreshRun.objects.exists()


@other_broker
@pytest.mark.django_db
def test_other_brokers_are_told_only_after_the_commit(queued_for_real, monkeypatch,
                                                      django_capture_on_commit_callbacks):
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
        request_refresh(kind="all", requested_by=None, source=RunSource.COMMAND, priority="emergency",
                        grants=frozenset({access.REQUEST_EMERGENCY}))
        assert told == []

    assert told == [True]


SHARED = "orm" in settings.Q_CLUSTER and settings.DATABASES["default"]["ENGINE"] == "refresh_project.sqlite"
shared_pickups = pytest.mark.skipif(not SHARED, reason="pickups are shared only on SQLite with the ORM broker")
not_shared = pytest.mark.skipif(SHARED, reason="here pickups are shared")
LANE = settings.Q_CLUSTER["name"]


def waiting_tasks(lane=LANE) -> list[OrmQ]:
    """Tasks of the lane no worker has taken (the broker hands out those locked until now)."""
    return list(OrmQ.objects.filter(key=lane, lock__lte=timezone.now()))


def take_the_waiting_pickup(lane=LANE) -> list:
    """What a cluster's broker does when it hands a task to its workers: lock it for the retry time."""
    taken = get_broker(lane).dequeue()
    assert taken, "no task was waiting"
    return taken


def request_portfolio(user, **kwargs):
    run, created = request_refresh(kind="portfolio", target_user_id=user.pk, requested_by=None,
                                   source=RunSource.COMMAND, **kwargs)
    assert created
    return run


@shared_pickups
@pytest.mark.django_db
def test_runs_queued_behind_a_waiting_pickup_share_it(queued_for_real, demo):
    users = list(get_user_model().objects.all()[:4])
    for user in users:
        request_portfolio(user)

    assert RefreshRun.objects.filter(status=RunStatus.QUEUED).count() == 4
    [task] = waiting_tasks()
    assert task.func() == "refresh.tasks.execute_next_refresh"
    assert WaitingPickup.objects.get(lane=LANE).task_id == task.pk


@shared_pickups
@pytest.mark.django_db
def test_a_run_queued_after_a_worker_took_the_pickup_queues_a_new_one(queued_for_real, demo):
    first, second, third = get_user_model().objects.all()[:3]
    request_portfolio(first)
    take_the_waiting_pickup()  # that worker may already have looked at the queue and missed what follows
    assert waiting_tasks() == []

    request_portfolio(second)
    request_portfolio(third)

    assert len(waiting_tasks()) == 1
    assert OrmQ.objects.filter(key=LANE).count() == 2  # the taken one and the new one


@shared_pickups
@pytest.mark.django_db
def test_a_pickup_whose_worker_died_is_shared_again_once_its_lock_lapses(queued_for_real, demo):
    first, second = get_user_model().objects.all()[:2]
    request_portfolio(first)
    take_the_waiting_pickup()
    OrmQ.objects.filter(key=LANE).update(lock=timezone.now() - timedelta(seconds=1))  # the retry time passed

    request_portfolio(second)

    assert OrmQ.objects.filter(key=LANE).count() == 1  # the broker hands the lapsed one out again


@shared_pickups
@pytest.mark.django_db
def test_a_finished_pickup_is_not_mistaken_for_a_waiting_one(queued_for_real, demo):
    first, second = get_user_model().objects.all()[:2]
    request_portfolio(first)
    [(task_id, _payload)] = take_the_waiting_pickup()
    get_broker(LANE).acknowledge(task_id)  # done and deleted

    request_portfolio(second)

    [task] = waiting_tasks()
    assert WaitingPickup.objects.get(lane=LANE).task_id == task.pk != task_id


@shared_pickups
@pytest.mark.django_db
def test_an_emergency_shares_a_pickup_in_each_lane(queued_for_real, demo, admin, settings):
    settings.REFRESH_EMERGENCY_LANE = True
    for kind in ("benchmark", "strategy"):
        request_refresh(kind=kind, requested_by=admin, source=RunSource.COMMAND, priority="emergency")

    assert [t.task["kwargs"] for t in waiting_tasks(dispatch.EMERGENCY_CLUSTER)] == [{"emergency_lane": True}]
    assert [t.task["kwargs"] for t in waiting_tasks()] == [{}]


@shared_pickups
@pytest.mark.django_db
def test_a_worker_that_starts_a_run_passes_a_pickup_on_to_the_runs_still_waiting(queued_for_real, demo,
                                                                               monkeypatch):
    first, second = get_user_model().objects.all()[:2]
    request_portfolio(first)
    request_portfolio(second)
    take_the_waiting_pickup()
    seen = []
    monkeypatch.setattr(execution, "execute_claimed_run",
                        lambda run, **kwargs: seen.append((run.target_user_id, len(waiting_tasks()))) or run)

    execution.execute_next_refresh()  # another worker can start the second run meanwhile
    take_the_waiting_pickup()
    execution.execute_next_refresh()  # nothing waits behind this one

    assert seen == [(first.pk, 1), (second.pk, 0)]


@shared_pickups
@pytest.mark.django_db
def test_the_emergency_lane_passes_its_pickup_on_only_to_emergencies(queued_for_real, demo, admin, monkeypatch,
                                                                    settings):
    settings.REFRESH_EMERGENCY_LANE = True
    monkeypatch.setattr(execution, "execute_claimed_run", lambda run, **kwargs: run)
    request_refresh(kind="benchmark", requested_by=admin, source=RunSource.COMMAND, priority="emergency")
    request_portfolio(get_user_model().objects.first())
    take_the_waiting_pickup(dispatch.EMERGENCY_CLUSTER)

    execution.execute_next_refresh(min_priority=RunPriority.EMERGENCY)

    assert waiting_tasks(dispatch.EMERGENCY_CLUSTER) == []
    assert len(waiting_tasks()) == 1  # the normal lane's own, queued with the emergency


@not_shared
@pytest.mark.django_db
def test_elsewhere_every_run_queues_its_own_pickup(queued_for_real, demo, django_capture_on_commit_callbacks,
                                                   monkeypatch):
    told = []
    monkeypatch.setattr(dispatch, "_queue_pickup", lambda cluster, **kwargs: told.append(cluster))
    users = list(get_user_model().objects.all()[:3])
    with django_capture_on_commit_callbacks(execute=True):
        for user in users:
            request_portfolio(user)
    monkeypatch.setattr(execution, "execute_claimed_run", lambda run, **kwargs: run)

    execution.execute_next_refresh()  # each waiting run has its pickup already: nothing passed on

    assert told == [LANE] * 3


@pytest.mark.django_db
def test_without_an_emergency_cluster_an_emergency_leaves_nothing_in_its_lane(queued_for_real, demo, admin,
                                                                              django_capture_on_commit_callbacks):
    lanes = get_broker(dispatch.EMERGENCY_CLUSTER), get_broker(settings.Q_CLUSTER["name"])
    for broker in lanes:
        broker.purge_queue()
    with django_capture_on_commit_callbacks(execute=True):
        request_refresh(kind="benchmark", requested_by=admin, source=RunSource.COMMAND, priority="emergency")
    assert [broker.queue_size() for broker in lanes] == [0, 1]  # the normal workers take emergencies first
