"""Outbound notifications: one delivery per subscriber of an event, sent in the background with retries.

Queueing only writes rows and schedules a task after commit, so a slow or failing endpoint
never slows or fails the refresh that emitted the event.
"""

import json
import logging
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import models, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from core.log_redaction import redact, redact_text
from notifications.models import Channel, DeliveryStatus, NotificationDelivery, Subscription
from notifications.signing import DELIVERY_HEADER, EVENT_HEADER, signed_headers

logger = logging.getLogger("notifications.outbound")
DELIVER_TASK = "notifications.tasks.deliver_notification"


def queue_notifications(*, event_type: str, payload: dict[str, Any]) -> list[NotificationDelivery]:
    """Record a pending delivery for each active subscriber of this event type and queue it."""
    subscribers = [s for s in Subscription.objects.filter(is_active=True) if event_type in s.event_types]
    if not subscribers:
        return []
    with transaction.atomic():  # a savepoint: a failure here never breaks the caller's transaction
        # Redacted like a log record: a provider echoing a key must not carry it to subscribers.
        safe = redact(payload)
        deliveries = NotificationDelivery.objects.bulk_create(
            NotificationDelivery(subscription=s, event_type=event_type, payload=safe) for s in subscribers
        )
    for delivery in deliveries:
        _enqueue_on_commit(delivery.pk)
    return deliveries


def _enqueue_on_commit(delivery_pk: int) -> None:
    # A lambda, not functools.partial: Django logs a robust callback's failure by its __qualname__.
    transaction.on_commit(lambda: _enqueue(delivery_pk), robust=True)


def _enqueue(delivery_pk: int) -> None:
    async_task(DELIVER_TASK, delivery_pk, task_name=f"notify: delivery {delivery_pk}")


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the n-th failed attempt: base, 2 x base, 4 x base..."""
    return timedelta(seconds=settings.NOTIFICATION_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


def delivery_body(delivery: NotificationDelivery) -> bytes:
    """The JSON a webhook subscriber receives; its bytes are what the signature covers."""
    return json.dumps(
        {
            "id": str(delivery.event_id),
            "type": delivery.event_type,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def _send_webhook(delivery: NotificationDelivery) -> int:
    import requests  # noqa: PLC0415 - loaded to send, not by every process queueing deliveries (start-up time)

    body = delivery_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "manual-refresh-notifier/1",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.event_id),
        **signed_headers(secret=delivery.subscription.secret, body=body),
    }
    response = requests.post(
        delivery.subscription.url,
        data=body,
        headers=headers,
        allow_redirects=False,
        timeout=(settings.NOTIFICATION_CONNECT_TIMEOUT, settings.NOTIFICATION_READ_TIMEOUT),
    )
    if not HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
        raise DeliveryFailed(f"HTTP {response.status_code}", status_code=response.status_code)
    return response.status_code


def _send_email(delivery: NotificationDelivery) -> None:
    data = delivery.payload
    what = " ".join(str(data[k]) for k in ("kind", "status", "refresh_id") if data.get(k))
    send_mail(
        subject=f"[refresh] {delivery.event_type}{': ' + what if what else ''}",
        message=json.dumps({"type": delivery.event_type, "data": data}, indent=2, sort_keys=True),
        from_email=None,
        recipient_list=delivery.subscription.recipients,
        fail_silently=False,
    )


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def attempt_delivery(*, delivery_id: int) -> NotificationDelivery | None:
    """Make one attempt; on failure schedule the next after a backoff, until the attempts run out.

    Claimed with a compare-and-set on the attempt count, so two workers never send the same
    attempt twice. Returns None when there was nothing to do.
    """
    delivery = NotificationDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    now = timezone.now()
    claimed = NotificationDelivery.objects.filter(
        pk=delivery.pk,
        status=DeliveryStatus.PENDING,
        attempts=delivery.attempts,
    ).update(status=DeliveryStatus.SENDING, attempts=delivery.attempts + 1, last_attempt_at=now)
    if not claimed:
        return None
    delivery.refresh_from_db()
    try:
        if delivery.subscription.channel == Channel.EMAIL:
            _send_email(delivery)
            code = None
        else:
            code = _send_webhook(delivery)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried, never raised
        return _record_failure(delivery, exc)
    delivery.status = DeliveryStatus.DELIVERED
    delivery.last_status_code = code
    delivery.last_error = ""
    delivery.delivered_at = timezone.now()
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "last_status_code", "last_error", "delivered_at", "next_attempt_at"])
    logger.info(
        "notification %s delivered to %s after %d attempt(s)",
        delivery.event_type,
        delivery.subscription.name,
        delivery.attempts,
        extra={"event": "notification_delivered", "delivery": delivery.pk, "attempts": delivery.attempts},
    )
    return delivery


def _record_failure(delivery: NotificationDelivery, exc: Exception) -> NotificationDelivery:
    delivery.last_status_code = getattr(exc, "status_code", None)
    # requests' errors quote the URL, whose query string may hold the subscriber's token.
    url = delivery.subscription.url
    text = str(exc).replace(url, "<subscription url>") if url else str(exc)
    delivery.last_error = redact_text(f"{type(exc).__name__}: {text}")[:1000]
    delivery.status, delivery.next_attempt_at = _after_failed_attempt(delivery.attempts)
    delivery.save(update_fields=["status", "last_status_code", "last_error", "next_attempt_at"])
    logger.warning(
        "notification %s to %s failed (attempt %d): %s",
        delivery.event_type,
        delivery.subscription.name,
        delivery.attempts,
        delivery.last_error,
        extra={
            "event": "notification_failed",
            "delivery": delivery.pk,
            "attempts": delivery.attempts,
            "status_code": delivery.last_status_code,
            "gave_up": delivery.status == "failed",
        },
    )
    _schedule_attempt(delivery.pk, delivery.next_attempt_at)
    return delivery


def _after_failed_attempt(attempts: int) -> tuple[str, datetime | None]:
    """The status and next attempt time after the n-th attempt failed: backoff, or give up."""
    if attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.PENDING, timezone.now() + retry_delay(attempts)


def _schedule_attempt(delivery_pk: int, when: datetime | None) -> None:
    if when:
        # A one-off schedule (deleted once run): the wait costs no worker, unlike a sleep in the task.
        schedule(DELIVER_TASK, delivery_pk, schedule_type=Schedule.ONCE, next_run=when, repeats=-1)


def retry_delivery(*, delivery: NotificationDelivery) -> None:
    """Send a failed delivery again now (the admin's "Retry now"), with a fresh set of attempts."""
    updated = NotificationDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=None
    )
    if updated:
        transaction.on_commit(lambda: _enqueue(delivery.pk))


# What the worker stopping mid-attempt leaves as the attempt's error.
LOST_ATTEMPT = "The worker stopped during this attempt; it may or may not have reached the subscriber."


def recover_lost_deliveries() -> dict[str, int]:
    """The periodic sweep behind at-least-once delivery; returns what it recovered.

    An attempt left in `sending` (its worker was killed mid-attempt) counts as failed and
    goes to the usual backoff, or gives up once the attempts are used. A `pending` delivery
    whose task never ran (the broker was down when it was queued, or its retry schedule was
    lost) is queued again. Both are claimed with compare-and-set updates, and a task that
    finds nothing to claim does nothing, so a sweep racing a worker never sends twice what
    the worker sends. A subscriber may still see an event twice if the lost attempt did
    reach it: the X-Refresh-Delivery header lets it drop the repeat.
    """
    # Well past the longest an attempt can take (both HTTP timeouts) and a busy queue's wait.
    cutoff = timezone.now() - timedelta(seconds=settings.NOTIFICATION_LOST_AFTER_SECONDS)
    stuck = list(
        NotificationDelivery.objects.filter(status=DeliveryStatus.SENDING, last_attempt_at__lt=cutoff).values_list(
            "pk", "attempts"
        )
    )
    for delivery_pk, attempts in stuck:
        status, next_attempt_at = _after_failed_attempt(attempts)
        if NotificationDelivery.objects.filter(pk=delivery_pk, status=DeliveryStatus.SENDING, attempts=attempts).update(
            status=status, next_attempt_at=next_attempt_at, last_status_code=None, last_error=LOST_ATTEMPT
        ):
            _schedule_attempt(delivery_pk, next_attempt_at)
    owed = list(
        NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(
            models.Q(next_attempt_at__lt=cutoff)
            | models.Q(next_attempt_at__isnull=True, created_at__lt=cutoff, attempts=0)
        )
        .values_list("pk", flat=True)
    )
    for delivery_pk in owed:
        _enqueue(delivery_pk)
    if stuck or owed:
        logger.warning(
            "recovered %d notification attempt(s) left sending and re-queued %d owed deliveries",
            len(stuck),
            len(owed),
            extra={"event": "notifications_recovered", "stuck": len(stuck), "requeued": len(owed)},
        )
    return {"stuck": len(stuck), "requeued": len(owed)}
