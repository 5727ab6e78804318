"""At-least-once delivery: attempts a killed worker left `sending`, and tasks that never ran, are recovered."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from django_q.models import Schedule

from notifications.models import DeliveryStatus, NotificationDelivery, Subscription
from notifications.services import outbound
from notifications.services.outbound import LOST_ATTEMPT, recover_lost_deliveries
from notifications.tasks import deliver_notification
from refresh.services.schedules import schedules

HOOK = "https://hooks.example.test/refresh"


@pytest.fixture
def subscription(db):
    return Subscription.objects.create(
        name="ops", url=HOOK, secret="sub-secret-0123456789", event_types=["refresh.completed"]
    )


@pytest.fixture
def queued(monkeypatch):
    """Delivery ids the sweep queues, instead of running them inline."""
    ids: list[int] = []
    monkeypatch.setattr(outbound, "_enqueue", ids.append)
    return ids


def delivery(subscription, *, status, attempts=0, started_ago=None, due_ago=None, created_ago=None):
    now = timezone.now()
    made = NotificationDelivery.objects.create(
        subscription=subscription,
        event_type="refresh.completed",
        payload={"refresh_id": "ref_x"},
        status=status,
        attempts=attempts,
        last_attempt_at=now - started_ago if started_ago is not None else None,
        next_attempt_at=now - due_ago if due_ago is not None else None,
    )
    if created_ago is not None:
        NotificationDelivery.objects.filter(pk=made.pk).update(created_at=now - created_ago)
    return made


def test_an_attempt_left_sending_counts_as_failed_and_is_retried_after_the_backoff(subscription, queued, settings):
    settings.NOTIFICATION_LOST_AFTER_SECONDS = 300
    lost = delivery(subscription, status=DeliveryStatus.SENDING, attempts=2, started_ago=timedelta(minutes=6))
    running = delivery(subscription, status=DeliveryStatus.SENDING, attempts=1, started_ago=timedelta(minutes=1))

    assert recover_lost_deliveries() == {"stuck": 1, "requeued": 0}

    lost.refresh_from_db()
    assert (lost.status, lost.attempts, lost.last_error) == (DeliveryStatus.PENDING, 2, LOST_ATTEMPT)
    assert lost.next_attempt_at > timezone.now()
    retry = Schedule.objects.get(func=outbound.DELIVER_TASK)
    assert retry.schedule_type == Schedule.ONCE
    assert retry.next_run == lost.next_attempt_at
    assert retry.args == repr((lost.pk,))
    running.refresh_from_db()
    assert running.status == DeliveryStatus.SENDING  # may still be on its way: left alone
    assert queued == []


def test_a_lost_last_attempt_gives_up(subscription, queued, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    lost = delivery(subscription, status=DeliveryStatus.SENDING, attempts=3, started_ago=timedelta(hours=1))

    recover_lost_deliveries()

    lost.refresh_from_db()
    assert (lost.status, lost.next_attempt_at) == (DeliveryStatus.FAILED, None)
    assert not Schedule.objects.exists()


def test_deliveries_whose_task_never_ran_are_queued_again(subscription, queued):
    never_sent = delivery(subscription, status=DeliveryStatus.PENDING, created_ago=timedelta(minutes=10))
    overdue_retry = delivery(subscription, status=DeliveryStatus.PENDING, attempts=1, due_ago=timedelta(minutes=10))
    just_created = delivery(subscription, status=DeliveryStatus.PENDING)
    retry_later = delivery(subscription, status=DeliveryStatus.PENDING, attempts=1, due_ago=-timedelta(minutes=5))
    done = delivery(subscription, status=DeliveryStatus.DELIVERED, created_ago=timedelta(hours=1))

    assert recover_lost_deliveries() == {"stuck": 0, "requeued": 2}

    assert sorted(queued) == sorted([never_sent.pk, overdue_retry.pk])
    assert {just_created.pk, retry_later.pk, done.pk}.isdisjoint(queued)


def test_a_requeued_delivery_is_sent_once_even_when_its_first_task_turns_up(subscription, queued):
    owed = delivery(subscription, status=DeliveryStatus.PENDING, created_ago=timedelta(minutes=10))
    recover_lost_deliveries()
    assert queued == [owed.pk]

    with responses.RequestsMock() as endpoint:
        endpoint.add(responses.POST, HOOK, status=200)
        assert deliver_notification(owed.pk) == DeliveryStatus.DELIVERED
        assert deliver_notification(owed.pk) == "nothing to do"  # the lost task, arriving late
        assert len(endpoint.calls) == 1


def test_the_sweep_is_installed_as_a_schedule():
    assert ("notifications.tasks.recover_lost_notifications", Schedule.MINUTES, 1) in [
        (entry["func"], entry["schedule_type"], entry.get("minutes")) for entry in schedules()
    ]
