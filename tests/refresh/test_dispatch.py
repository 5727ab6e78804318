"""Queueing a run's pickup: in the run's own transaction with the ORM broker, after the commit otherwise."""
import pytest
from django.conf import settings
from django.db import transaction
from django_q.models import OrmQ

from refresh.models import RefreshRun, RunSource
from refresh.services import access, dispatch
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
