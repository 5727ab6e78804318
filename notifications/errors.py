"""Why an inbound webhook was refused; the API turns each into a JSON error with its status."""

from refresh.errors import RefreshError


class WebhookRejected(RefreshError):
    code = "webhook_rejected"
    status_code = 400


class InvalidWebhookSignature(WebhookRejected):
    """Missing, forged or stale, or an unknown source: nothing about the request can be trusted."""

    code = "invalid_signature"
    status_code = 401


class MalformedWebhook(WebhookRejected):
    code = "malformed_body"
    status_code = 400


class EmergencyNotAllowed(WebhookRejected):
    code = "emergency_not_allowed"
    status_code = 403
