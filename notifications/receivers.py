"""Receivers of refresh events: queue notifications, and log each finished run under its own logger."""

import logging

from django.dispatch import receiver

from notifications.services.outbound import queue_notifications
from refresh.models import RunSource
from refresh.services.events import REFRESH_COMPLETED, REFRESH_FAILED, refresh_event

# Manual (API, admin, command, webhook) and scheduled runs are logged apart, so either can
# be routed, filtered or alerted on by logger name.
manual_logger = logging.getLogger("refresh.manual")
scheduled_logger = logging.getLogger("refresh.scheduled")


@receiver(refresh_event, dispatch_uid="notifications.queue_notifications")
def notify_subscribers(sender, *, event_type: str, payload: dict, **kwargs):
    queue_notifications(event_type=event_type, payload=payload)


@receiver(refresh_event, dispatch_uid="notifications.log_finished_run")
def log_finished_run(sender, *, event_type: str, payload: dict, **kwargs):
    if event_type not in (REFRESH_COMPLETED, REFRESH_FAILED):
        return
    run_logger = scheduled_logger if payload.get("source") == RunSource.SCHEDULE else manual_logger
    level = logging.INFO if event_type == REFRESH_COMPLETED else logging.ERROR
    run_logger.log(
        level,
        "refresh run %s %s in %s ms",
        payload.get("refresh_id"),
        payload.get("status"),
        payload.get("duration_ms"),
        extra={"event": event_type, **payload},  # the event's own fields, under its own names
    )
