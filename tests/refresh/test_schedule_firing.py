"""Schedules as django-q2 fires them: stored kwargs it can read back, local times, failures reported."""

import ast
import logging
from datetime import UTC, datetime, timedelta
from multiprocessing import Queue, Value

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.models import Failure, Schedule, Success
from django_q.monitor import monitor
from django_q.scheduler import scheduler
from django_q.signing import SignedPackage
from django_q.worker import worker

from notifications.models import Channel, DeliveryStatus, NotificationDelivery, Subscription
from refresh.models import RefreshRun, RunSource
from refresh.services.schedules import install_schedules, next_local_time

NIGHTLY, BENCHMARK = "refresh: nightly full", "refresh: daily benchmark"


def fire_due_schedules():
    """django-q2's own scheduler pass; the test settings run the tasks it queues at once."""
    scheduler(broker=get_broker())


class HeldBroker(Broker):
    """Keeps what the scheduler queues, for a worker and monitor run here to take."""

    def __init__(self):
        super().__init__(list_key="held")
        self.packages = []

    def enqueue(self, task):
        self.packages.append(task)
        return len(self.packages)


def fire_through_a_worker(broker=None):
    """A scheduler pass whose tasks go through django-q2's worker and monitor as in a cluster (not in
    sync mode, which re-raises a task's error instead of recording the failure)."""
    broker = broker or HeldBroker()
    scheduler(broker=broker)
    tasks: Queue[object] = Queue()
    results: Queue[object] = Queue()
    for package in broker.packages:
        tasks.put(SignedPackage.loads(package))
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results, broker=broker)


def make_due(name: str):
    """This schedule alone due. The interval ones are due as soon as they are installed, and fire a
    run only in trading hours: left due, what a pass fires would depend on the time of day."""
    Schedule.objects.exclude(name=name).update(next_run=timezone.now() + timedelta(hours=1))
    Schedule.objects.filter(name=name).update(next_run=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db(transaction=True)
def test_a_due_routine_schedule_runs_its_refresh(demo):
    install_schedules()
    make_due(BENCHMARK)
    fire_due_schedules()
    run = RefreshRun.objects.get(source=RunSource.SCHEDULE)
    assert (run.kind, run.mode) == ("benchmark", "incremental")
    assert run.is_finished
    assert run.status == "success"
    assert not Failure.objects.exists()
    assert Success.objects.filter(group=BENCHMARK).count() == 1


def test_stored_kwargs_are_plain_values_django_q_can_read_back(db):
    install_schedules()
    for schedule in Schedule.objects.exclude(kwargs__in=["", "{}"]):
        kwargs = ast.literal_eval(schedule.kwargs)
        assert all(type(value) in (str, int, bool) for value in kwargs.values()), schedule.name
    nightly = ast.literal_eval(Schedule.objects.get(name=NIGHTLY).kwargs)
    assert nightly == {"kind": "all", "mode": "full", "interval_minutes": 1440}


@time_machine.travel(datetime(2026, 12, 7, 12, 0, tzinfo=UTC), tick=False)  # 07:00 in New York
def test_daily_schedules_are_due_at_their_local_time(db, settings):
    install_schedules()
    assert Schedule.objects.get(name=NIGHTLY).next_run == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)  # 02:00 EST
    assert Schedule.objects.get(name=BENCHMARK).next_run == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)  # 18:00 EST

    settings.REFRESH_SCHEDULE_TZ, settings.REFRESH_NIGHTLY_AT = "Europe/London", "03:30"
    install_schedules()
    assert Schedule.objects.get(name=NIGHTLY).next_run == datetime(2026, 12, 8, 3, 30, tzinfo=UTC)


def test_local_times_hold_across_daylight_saving():
    # US daylight saving ends on 1 November 2026: 02:00 local is 06:00 UTC before, 07:00 after.
    assert next_local_time("02:00", after=datetime(2026, 10, 30, 7, 0, tzinfo=UTC)) == datetime(
        2026, 10, 31, 6, 0, tzinfo=UTC
    )
    assert next_local_time("02:00", after=datetime(2026, 10, 31, 7, 0, tzinfo=UTC)) == datetime(
        2026, 11, 1, 7, 0, tzinfo=UTC
    )


@pytest.mark.django_db(transaction=True)
def test_a_fired_daily_schedule_is_put_back_on_its_local_time(demo):
    install_schedules()
    # Through a worker and monitor, as in a cluster: django-q2 moves next_run on by 24 h (UTC)
    # before the task runs, and the monitor's post_execute signal puts it back afterwards.
    nightly = Schedule.objects.get(name=NIGHTLY)
    kwargs = {**ast.literal_eval(nightly.kwargs), "q_options": {"sync": False}}
    Schedule.objects.filter(pk=nightly.pk).update(kwargs=repr(kwargs))
    make_due(NIGHTLY)
    fire_through_a_worker()
    nightly = Schedule.objects.get(name=NIGHTLY)
    assert nightly.next_run == next_local_time("02:00")


@pytest.mark.django_db(transaction=True)
def test_a_failing_schedule_is_reported_where_operators_look(demo, admin, caplog):
    install_schedules()
    subscription = Subscription.objects.create(
        name="ops", channel=Channel.EMAIL, emails="ops@example.com", event_types=["schedule.failed"]
    )
    Schedule.objects.create(
        name="deliberately failing",
        func="math.sqrt",
        args="-1",
        kwargs=repr({"q_options": {"sync": False}}),  # recorded as a cluster would
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() - timedelta(seconds=1),
    )
    with caplog.at_level(logging.ERROR, logger="refresh.scheduled"):
        fire_through_a_worker()
    assert Failure.objects.get().group == "deliberately failing"

    record = next(r for r in caplog.records if getattr(r, "event", None) == "schedule.failed")
    assert record.levelno == logging.ERROR
    assert record.schedule == "deliberately failing"
    assert "math domain error" in record.error

    delivery = NotificationDelivery.objects.get(subscription=subscription)
    assert (delivery.event_type, delivery.status) == ("schedule.failed", DeliveryStatus.DELIVERED)
    assert delivery.payload["schedule"] == "deliberately failing"
    assert len(mail.outbox) == 1
    assert "schedule.failed" in mail.outbox[0].subject

    browser = Client()
    browser.force_login(admin)
    page = browser.get("/admin/refresh/refreshrun/dashboard/")
    assert page.status_code == 200
    assert "deliberately failing" in page.content.decode()
    assert page.context["dashboard"]["failed_schedules"][0]["schedule"] == "deliberately failing"


@pytest.mark.django_db(transaction=True)
def test_a_failed_task_that_no_schedule_started_raises_no_schedule_event(demo, caplog):
    from django_q.tasks import async_task

    broker = HeldBroker()
    async_task("math.sqrt", -1, sync=False, broker=broker)
    with caplog.at_level(logging.ERROR, logger="refresh.scheduled"):
        fire_through_a_worker(broker)
    assert Failure.objects.get().group is None
    assert not [r for r in caplog.records if getattr(r, "event", None) == "schedule.failed"]


def test_bad_schedule_settings_fail_the_system_checks(settings):
    from django.core.management.base import SystemCheckError

    settings.REFRESH_NIGHTLY_AT = "25:00"
    with pytest.raises(SystemCheckError, match="REFRESH_NIGHTLY_AT"):
        call_command("check")
