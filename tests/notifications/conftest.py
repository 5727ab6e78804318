"""Webhook sources and a client that signs what it posts."""

import json
import time

import pytest
from rest_framework.test import APIClient

from notifications.models import WebhookSource
from notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

WEBHOOKS = "/api/v1/manual/refresh/webhooks"
SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def source(demo):
    return WebhookSource.objects.create(name="market-feed", secret=SECRET)


def signed_post(client, name, body, *, secret=SECRET, timestamp=None, signature_value=None):
    """POST raw bytes with the headers a sender computes: timestamp and HMAC of "timestamp.body"."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature_value if signature_value is not None else signature(secret=secret, timestamp=ts, body=raw)
    return client.post(
        f"{WEBHOOKS}/{name}/",
        data=raw,
        content_type="application/json",
        headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sig},
    )


@pytest.fixture
def sender():
    """An anonymous client that enforces CSRF, like any outside system."""
    client = APIClient(enforce_csrf_checks=True)

    def post(name, body, **kwargs):
        return signed_post(client, name, body, **kwargs)

    return post
