"""Domain events of the refresh system, for notifications, metrics and logs to act on.

``emit_event`` logs the event and sends the ``refresh_event`` signal; receivers (outbound
webhooks, email) subscribe to the signal. A receiver that fails never fails the caller.
"""

import logging
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

if TYPE_CHECKING:
    from refresh.models import RefreshRun

logger = logging.getLogger("refresh.events")

# Sent with: event_type (str), payload (dict).
refresh_event = Signal()

REFRESH_COMPLETED = "refresh.completed"
REFRESH_FAILED = "refresh.failed"
DATA_ANOMALY = "data.anomaly"
RATELIMIT_WARNING = "ratelimit.warning"
SCHEDULE_FAILED = "schedule.failed"
EVENT_TYPES = (REFRESH_COMPLETED, REFRESH_FAILED, DATA_ANOMALY, RATELIMIT_WARNING, SCHEDULE_FAILED)


def emit_event(*, event_type: str, payload: dict[str, Any]) -> None:
    """Announce an event; receivers' errors are logged, never raised."""
    logger.info("event %s", event_type, extra={"event_type": event_type, "payload": payload})
    for receiver, result in refresh_event.send_robust(sender=None, event_type=event_type, payload=payload):
        if isinstance(result, Exception):
            logger.error("event receiver %r failed for %s: %s", receiver, event_type, result)


def run_payload(run: "RefreshRun") -> dict[str, Any]:
    """What events say about a run."""
    return {
        "refresh_id": run.refresh_id,
        "kind": run.kind,
        "mode": run.mode,
        "status": run.status,
        "source": run.source,
        "priority": run.priority_name,
        "duration_ms": run.duration_ms,
        "items_updated": run.items_updated,
        "errors": run.errors[:20],
        "failed_symbols": dict(list(run.failed_symbols.items())[:50]),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
