"""Admin pages: webhook sources with their event mappings and deliveries; subscriptions and the delivery log."""

from django.contrib import admin, messages
from django.db import models

from notifications.models import (
    DeliveryStatus,
    NotificationDelivery,
    Subscription,
    WebhookDelivery,
    WebhookEventMapping,
    WebhookSource,
)
from notifications.services.outbound import retry_delivery
from notifications.services.routes import DEFAULT_EVENT_ROUTES


class WebhookEventMappingInline(admin.TabularInline):
    model = WebhookEventMapping
    extra = 0


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "allow_emergency", "created_at"]
    list_filter = ["is_active", "allow_emergency"]
    search_fields = ["name", "description"]
    inlines = [WebhookEventMappingInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active", "allow_emergency", "secret"]}),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):  # noqa: FBT002 - Django's signature
        form = super().get_form(request, obj, change=change, **kwargs)
        built_in = ", ".join(f"{t} -> {r.kind}/{r.mode}" for t, r in DEFAULT_EVENT_ROUTES.items())
        form.base_fields["description"].help_text = f"Event types without a mapping below use: {built_in}."
        return form


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["delivery_id", "source", "event_type", "run", "received_at"]
    list_filter = ["source", "event_type"]
    search_fields = ["delivery_id", "run__refresh_id"]
    readonly_fields = ["source", "delivery_id", "event_type", "payload", "run", "received_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "channel", "url", "emails", "event_types", "is_active"]
    list_filter = ["channel", "is_active"]
    search_fields = ["name", "url", "emails"]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: every notification with its attempts, last status code and last error."""

    list_display = [
        "event_type",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event_type", "subscription"]
    search_fields = ["event_id", "last_error"]
    readonly_fields = [f.name for f in NotificationDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry failed deliveries now", permissions=["change"])
    def retry_now(self, request, queryset):
        failed = list(queryset.filter(status=DeliveryStatus.FAILED))
        for delivery in failed:
            retry_delivery(delivery=delivery)
        self.message_user(request, f"{len(failed)} delivery(ies) queued again.", messages.SUCCESS)
