"""Routes of the inbound webhooks, under /api/v1/manual/refresh/; a trailing slash is optional."""

from django.urls import re_path

from notifications.views import WebhookReceiveView

urlpatterns = [
    re_path(r"^webhooks/(?P<source>[a-z0-9][a-z0-9_-]{0,49})/?$", WebhookReceiveView.as_view(), name="webhook"),
]
