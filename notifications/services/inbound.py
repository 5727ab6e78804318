"""Receiving a signed webhook: verify it, map its event to a refresh, start it once per delivery id."""

import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from django.db import IntegrityError, transaction
from rest_framework import serializers

from core.roles import Role
from notifications.errors import EmergencyNotAllowed, InvalidWebhookSignature, MalformedWebhook
from notifications.models import WebhookDelivery, WebhookSource
from notifications.services.routes import event_route
from notifications.signing import signature_matches, timestamp_is_fresh
from refresh.models import RefreshRun, RunPriority, RunSource
from refresh.services import access
from refresh.services.requests import parse_priority, request_refresh

logger = logging.getLogger("notifications.inbound")
MAX_BODY_BYTES = 64 * 1024
_UNKNOWN_SOURCE_SECRET = secrets.token_hex(32)  # signs nothing anyone has: a stand-in for timing only


class WebhookEvent(TypedDict):
    """A webhook body as WebhookEventSerializer validates it."""

    id: str
    type: str
    priority: NotRequired[str]
    symbols: NotRequired[list[str]]
    data: NotRequired[dict[str, Any]]


class WebhookEventSerializer(serializers.Serializer[WebhookEvent]):
    """The signed body: a delivery id, an event type and optional refresh options."""

    id = serializers.RegexField(r"^[A-Za-z0-9._:-]{1,100}$", help_text="Unique per delivery; a replay is ignored.")
    type = serializers.RegexField(r"^[a-z0-9_.-]{1,100}$")
    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority], required=False)
    symbols = serializers.ListField(child=serializers.CharField(max_length=20), required=False, max_length=500)
    # DRF's metaclass takes declared fields off the class, so this does not hide Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]  # see above
        required=False, help_text="Free-form event details, kept with the delivery."
    )


@dataclass(frozen=True)
class WebhookOutcome:
    run: RefreshRun | None
    created: bool
    replayed: bool


def _verified_source(*, source_name: str, timestamp: str, signature: str, body: bytes) -> WebhookSource:
    """The active source whose secret signed this body, or InvalidWebhookSignature.

    An unknown source is refused exactly like a bad signature, after the same HMAC work, so
    that neither the answer nor its timing tells which source names exist.
    """
    source = WebhookSource.objects.filter(name=source_name, is_active=True).first()
    secret = source.secret if source is not None else _UNKNOWN_SOURCE_SECRET
    matches = signature_matches(secret=secret, timestamp=timestamp, body=body, given=signature)
    if source is None or not timestamp or not signature or not matches:
        raise InvalidWebhookSignature("Missing or invalid signature for this source, body and timestamp.")
    if not timestamp_is_fresh(timestamp=timestamp):
        raise InvalidWebhookSignature("The timestamp is more than 5 minutes away from now.", code="stale_timestamp")
    return source


def _parsed_event(body: bytes) -> WebhookEvent:
    if len(body) > MAX_BODY_BYTES:
        raise MalformedWebhook(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise MalformedWebhook("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise MalformedWebhook("The body must be a JSON object.")
    event = WebhookEventSerializer(data=data)
    if not event.is_valid():
        field, errors = next(iter(event.errors.items()))
        raise MalformedWebhook(f"{field}: {errors[0]}")
    validated: WebhookEvent = event.validated_data
    return validated


def receive_webhook(*, source_name: str, timestamp: str, signature: str, body: bytes) -> WebhookOutcome:
    """Start the refresh a signed event asks for, as the system; a repeated delivery id finds its run.

    Raises a WebhookRejected (401 source/signature/age, 400 body, 403 emergency) or
    a refresh error from request_refresh, in every case before anything is written.
    """
    source = _verified_source(source_name=source_name, timestamp=timestamp, signature=signature, body=body)
    event = _parsed_event(body)
    previous = WebhookDelivery.objects.filter(source=source, delivery_id=event["id"]).select_related("run").first()
    if previous is not None:
        return WebhookOutcome(run=previous.run, created=False, replayed=True)
    route = event_route(source=source, event_type=event["type"])
    if route is None:
        raise MalformedWebhook(f'Unknown event type "{event["type"]}".', code="unknown_event_type")
    priority = parse_priority(event.get("priority")) or route.priority
    if priority >= RunPriority.EMERGENCY and not source.allow_emergency:
        raise EmergencyNotAllowed(f'Source "{source.name}" may not ask for emergency priority.')
    try:
        with transaction.atomic():
            # The delivery row comes first: a concurrent replay waits on it and then finds the run.
            delivery = WebhookDelivery.objects.create(
                source=source, delivery_id=event["id"], event_type=event["type"], payload=event.get("data", {})
            )
            run, created = request_refresh(
                kind=route.kind,
                mode=route.mode,
                priority=priority,
                symbols=event.get("symbols"),
                requested_by=None,
                role=Role.SYSTEM,
                source=RunSource.WEBHOOK,
                grants=frozenset({access.REQUEST_EMERGENCY}) if source.allow_emergency else frozenset(),
            )
            delivery.run = run
            delivery.save(update_fields=["run"])
    except IntegrityError:
        previous = WebhookDelivery.objects.select_related("run").get(source=source, delivery_id=event["id"])
        return WebhookOutcome(run=previous.run, created=False, replayed=True)
    logger.info(
        "webhook %s from %s started %s",
        event["type"],
        source.name,
        run.refresh_id,
        extra={
            "event": "webhook_received",
            "source": source.name,
            "delivery_id": event["id"],
            "event_type": event["type"],
            "refresh_id": run.refresh_id,
            "new_run": created,
        },
    )
    return WebhookOutcome(run=run, created=created, replayed=False)
