"""Which refresh a webhook event starts: the source's own mapping for its type, else the built-in one.

Apart from receiving (``inbound``), whose body validation loads DRF, so the admin can show the
built-in routes without it.
"""

from dataclasses import dataclass

from notifications.models import WebhookEventMapping, WebhookSource
from refresh.models import RefreshKind, RefreshMode, RunPriority


@dataclass(frozen=True)
class EventRoute:
    kind: str
    mode: str
    priority: int


# Used when a source has no mapping of its own for the event type (WebhookEventMapping).
DEFAULT_EVENT_ROUTES = {
    "market.event": EventRoute(RefreshKind.PRICES, RefreshMode.SMART, RunPriority.HIGH),
    "market.close": EventRoute(RefreshKind.ALL, RefreshMode.INCREMENTAL, RunPriority.MEDIUM),
    "benchmark.update": EventRoute(RefreshKind.BENCHMARK, RefreshMode.INCREMENTAL, RunPriority.MEDIUM),
    "schedule.override": EventRoute(RefreshKind.ALL, RefreshMode.INCREMENTAL, RunPriority.HIGH),
    "alert.condition": EventRoute(RefreshKind.PRICES, RefreshMode.INCREMENTAL, RunPriority.HIGH),
    "alert.critical": EventRoute(RefreshKind.PRICES, RefreshMode.INCREMENTAL, RunPriority.EMERGENCY),
}


def event_route(*, source: WebhookSource, event_type: str) -> EventRoute | None:
    """The source's own mapping for this event type, else the built-in one, else None."""
    mapping = WebhookEventMapping.objects.filter(source=source, event_type=event_type).first()
    if mapping is not None:
        return EventRoute(mapping.kind, mapping.mode, mapping.priority)
    return DEFAULT_EVENT_ROUTES.get(event_type)
