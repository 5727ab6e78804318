"""Webhook sources and their deliveries (in), subscriptions and their delivery log (out)."""

import secrets
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.db import models

from refresh.models import RefreshKind, RefreshMode, RefreshRun, RunPriority
from refresh.services.events import EVENT_TYPES


def new_secret() -> str:
    """A signing secret long enough that guessing it is hopeless."""
    return secrets.token_urlsafe(32)


_NAME = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,49}$", "Lower-case letters, digits, '-' and '_' only.")
_EVENT_TYPE = RegexValidator(r"^[a-z0-9_.-]{1,100}$", "Lower-case letters, digits, '.', '-' and '_' only.")


class WebhookSource(models.Model):
    """An external system allowed to trigger refreshes at /webhooks/<name>/, with its signing secret."""

    name = models.CharField(max_length=50, unique=True, validators=[_NAME], help_text="Part of the webhook URL.")
    secret = models.CharField(
        max_length=200, default=new_secret, help_text="Shared with the sender; signs every request (HMAC-SHA256)."
    )
    is_active = models.BooleanField(default=True)
    allow_emergency = models.BooleanField(default=False, help_text="May this source ask for emergency priority?")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class WebhookEventMapping(models.Model):
    """What refresh one event type of a source starts; overrides the built-in mapping."""

    source = models.ForeignKey(WebhookSource, on_delete=models.CASCADE, related_name="mappings")
    event_type = models.CharField(max_length=100, validators=[_EVENT_TYPE])
    kind = models.CharField(
        max_length=12, choices=[(k, label) for k, label in RefreshKind.choices if k != RefreshKind.PORTFOLIO]
    )
    mode = models.CharField(max_length=12, choices=RefreshMode.choices, default=RefreshMode.INCREMENTAL)
    priority = models.PositiveSmallIntegerField(choices=RunPriority.choices, default=RunPriority.LOW)

    class Meta:
        ordering = ["source", "event_type"]
        constraints = [models.UniqueConstraint(fields=["source", "event_type"], name="one_mapping_per_event")]

    def __str__(self):
        return f"{self.source}: {self.event_type} -> {self.kind}/{self.mode}"

    def clean(self):
        try:
            source = self.source  # possibly not saved yet: the admin adds a source with its mappings
        except WebhookSource.DoesNotExist:
            return
        if self.priority >= RunPriority.EMERGENCY and not source.allow_emergency:
            raise ValidationError({"priority": "This source is not allowed emergency priority."})


class WebhookDelivery(models.Model):
    """One accepted inbound event; its delivery id is unique per source, so a replay finds the run."""

    source = models.ForeignKey(WebhookSource, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    run = models.ForeignKey(
        RefreshRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["source", "delivery_id"], name="one_delivery_per_id")]

    def __str__(self):
        return f"{self.source}/{self.delivery_id}"


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "Email"


def _check_event_types(value):
    if not isinstance(value, list) or not value or any(v not in EVENT_TYPES for v in value):
        raise ValidationError(f"A non-empty list of: {', '.join(EVENT_TYPES)}.")


class Subscription(models.Model):
    """Who hears about which refresh events: a signed webhook to a URL, or an email."""

    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEBHOOK)
    url = models.URLField(max_length=500, blank=True, help_text="Webhook channel: where events are POSTed.")
    emails = models.CharField(max_length=500, blank=True, help_text="Email channel: comma-separated recipients.")
    secret = models.CharField(
        max_length=200, default=new_secret, blank=True, help_text="Webhook channel: signs every payload (HMAC-SHA256)."
    )
    event_types = models.JSONField(
        default=list,
        validators=[_check_event_types],
        help_text="Event types to hear about, such as refresh.failed or schedule.failed.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.channel})"

    @property
    def recipients(self) -> list[str]:
        return [e.strip() for e in self.emails.split(",") if e.strip()]

    def clean(self):
        if self.channel == Channel.WEBHOOK and not self.url:
            raise ValidationError({"url": "A webhook subscription needs a URL."})
        if self.channel == Channel.WEBHOOK and not self.secret:
            raise ValidationError({"secret": "A webhook subscription needs a secret."})
        if self.channel == Channel.EMAIL:
            if not self.recipients:
                raise ValidationError({"emails": "An email subscription needs at least one recipient."})
            for address in self.recipients:
                validate_email(address)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class NotificationDelivery(models.Model):
    """One event for one subscription, with every attempt's outcome: the delivery log."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=50)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "notification deliveries"

    def __str__(self):
        return f"{self.event_type} to {self.subscription}"
