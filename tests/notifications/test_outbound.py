"""Outbound notifications: signed, delivered in the background, retried with backoff, never in a refresh's way."""

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
import responses
import time_machine
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from notifications.models import DeliveryStatus, NotificationDelivery, Subscription
from notifications.signing import signature
from notifications.tasks import deliver_notification
from refresh.models import RefreshRun, RunStatus
from refresh.services.events import DATA_ANOMALY, RATELIMIT_WARNING, emit_event

HOOK = "https://hooks.example.test/refresh"
BASE = "/api/v1/manual/refresh"


@pytest.fixture
def subscription(demo):
    return Subscription.objects.create(
        name="ops", url=HOOK, secret="sub-secret-0123456789", event_types=["refresh.completed", "refresh.failed"]
    )


@pytest.fixture
def endpoint():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def refresh_prices(admin_api, run_tasks):
    response = run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    return RefreshRun.objects.get(refresh_id=response.json()["refresh_id"])


def test_endpoint_failing_twice_then_succeeding_is_retried_with_backoff(
    subscription, endpoint, admin_api, run_tasks, settings
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    endpoint.post(HOOK, status=500)
    endpoint.post(HOOK, status=503)
    endpoint.post(HOOK, status=200)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = refresh_prices(admin_api, run_tasks)
        assert run.status == RunStatus.SUCCESS  # the failing endpoint did not touch the run

        delivery = NotificationDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        assert delivery.last_error == "DeliveryFailed: HTTP 500"
        assert delivery.next_attempt_at == timezone.now() + timedelta(seconds=30)
        retry = Schedule.objects.get(func="notifications.tasks.deliver_notification")
        assert (retry.schedule_type, retry.next_run, retry.args) == (
            Schedule.ONCE,
            delivery.next_attempt_at,
            f"({delivery.pk},)",
        )
        retry.delete()  # the scheduler deletes a one-off schedule once it has run it

        clock.shift(30)
        assert deliver_notification(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status_code) == (2, 503)
        assert delivery.next_attempt_at == timezone.now() + timedelta(seconds=60)  # doubled

        clock.shift(60)
        assert deliver_notification(delivery.pk) == "delivered"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert delivery.last_error == ""
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert len(endpoint.calls) == 3
    # Every attempt carries the same signed event.
    bodies = {call.request.body for call in endpoint.calls}
    assert len(bodies) == 1
    sent = json.loads(bodies.pop())
    assert sent["type"] == "refresh.completed"
    assert sent["id"] == str(delivery.event_id)
    assert sent["data"]["refresh_id"] == run.refresh_id
    assert sent["data"]["status"] == "success"


def test_payload_signature_verifies_with_the_subscription_secret(subscription, endpoint, admin_api, run_tasks):
    endpoint.post(HOOK, status=204)
    refresh_prices(admin_api, run_tasks)

    request = endpoint.calls[0].request
    expected = signature(
        secret="sub-secret-0123456789", timestamp=request.headers["X-Refresh-Timestamp"], body=request.body
    )
    assert request.headers["X-Refresh-Signature"] == expected
    assert request.headers["X-Refresh-Event"] == "refresh.completed"
    assert NotificationDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_unreachable_endpoint_never_fails_the_refresh_and_gives_up_after_the_attempts(
    subscription, endpoint, admin_api, run_tasks, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    subscription.url = HOOK + "?token=subscriber-token-123456"
    subscription.save()
    endpoint.post(HOOK, body=requests.ConnectionError(f"cannot reach {HOOK}?token=subscriber-token-123456"))

    run = refresh_prices(admin_api, run_tasks)
    delivery = NotificationDelivery.objects.get()
    deliver_notification(delivery.pk)

    assert run.status == RunStatus.SUCCESS
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    assert delivery.last_error.startswith("ConnectionError")
    assert "subscriber-token-123456" not in delivery.last_error
    assert deliver_notification(delivery.pk) == "nothing to do"  # a late retry sends nothing


def test_a_broken_queue_never_fails_the_refresh(subscription, admin_api, run_tasks, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr("notifications.services.outbound.async_task", broken)

    run = refresh_prices(admin_api, run_tasks)

    assert run.status == RunStatus.SUCCESS
    assert NotificationDelivery.objects.get().status == DeliveryStatus.PENDING  # kept, to retry from the admin


def test_only_subscribed_event_types_are_delivered(demo, endpoint, admin_api, run_tasks):
    Subscription.objects.create(name="failures", url=HOOK, event_types=["refresh.failed"])
    Subscription.objects.create(name="paused", url=HOOK, event_types=["refresh.completed"], is_active=False)
    refresh_prices(admin_api, run_tasks)
    assert not NotificationDelivery.objects.exists()
    assert not endpoint.calls


@pytest.mark.parametrize("event_type", [DATA_ANOMALY, RATELIMIT_WARNING])
def test_anomaly_and_rate_limit_events_are_delivered(demo, endpoint, django_capture_on_commit_callbacks, event_type):
    Subscription.objects.create(name="data", url=HOOK, event_types=[event_type])
    endpoint.post(HOOK, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        emit_event(event_type=event_type, payload={"symbol": "AAPL", "detail": "one-day move of 40%"})

    sent = json.loads(endpoint.calls[0].request.body)
    assert sent["type"] == event_type
    assert sent["data"] == {"symbol": "AAPL", "detail": "one-day move of 40%"}


def test_payloads_are_redacted_before_they_leave(demo, endpoint, settings, django_capture_on_commit_callbacks):
    settings.TWELVEDATA_API_KEY = "td-key-that-must-stay-home"
    Subscription.objects.create(name="data", url=HOOK, event_types=[DATA_ANOMALY])
    endpoint.post(HOOK, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        emit_event(
            event_type=DATA_ANOMALY,
            payload={"symbol": "AAPL", "detail": "provider said: bad apikey td-key-that-must-stay-home"},
        )

    sent = endpoint.calls[0].request.body.decode()
    assert "td-key-that-must-stay-home" not in sent
    assert json.loads(sent)["data"]["symbol"] == "AAPL"


def test_email_channel_sends_the_event_through_the_email_backend(demo, admin_api, run_tasks):
    Subscription.objects.create(
        name="on-call", channel="email", emails="ops@example.test, lead@example.test", event_types=["refresh.completed"]
    )
    run = refresh_prices(admin_api, run_tasks)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.test", "lead@example.test"]
    assert message.subject == f"[refresh] refresh.completed: prices success {run.refresh_id}"
    assert json.loads(str(message.body))["data"]["refresh_id"] == run.refresh_id
    assert NotificationDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_failed_email_is_logged_for_retry(demo, admin_api, run_tasks, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_outbound.BrokenEmailBackend"
    Subscription.objects.create(
        name="on-call", channel="email", emails="ops@example.test", event_types=["refresh.completed"]
    )
    run = refresh_prices(admin_api, run_tasks)

    assert run.status == RunStatus.SUCCESS
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "ConnectionRefusedError: SMTP server refused"


class BrokenEmailBackend:
    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server refused")
