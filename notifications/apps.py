"""App config for webhooks in and notifications out."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Webhooks and notifications"

    def ready(self):
        from notifications import receivers  # noqa: F401, PLC0415 - connects the refresh_event receivers once apps are ready
