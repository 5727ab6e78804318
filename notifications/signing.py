"""HMAC-SHA256 signatures over "<timestamp>.<body>", the same scheme in and out."""

import hashlib
import hmac
import time

from core.log_redaction import remember_secret

TIMESTAMP_HEADER = "X-Refresh-Timestamp"
SIGNATURE_HEADER = "X-Refresh-Signature"
EVENT_HEADER = "X-Refresh-Event"
DELIVERY_HEADER = "X-Refresh-Delivery"
MAX_AGE_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12  # Unix seconds, not a 5000-digit number


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The header value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    remember_secret(secret)
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(*, secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Timestamp and signature headers for a body sent now."""
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret=secret, timestamp=timestamp, body=body)}


def signature_matches(*, secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Constant-time comparison, so timing tells an attacker nothing; any header text is just a mismatch.

    Bytes, not text: ``compare_digest`` refuses a str holding non-ASCII characters.
    """
    expected = signature(secret=secret, timestamp=timestamp, body=body).encode()
    return hmac.compare_digest(expected, (given or "").encode("utf-8", "replace"))


def timestamp_is_fresh(*, timestamp: str, now: float | None = None) -> bool:
    """Within five minutes either way: older requests may be captured replays."""
    if not (timestamp or "").isdigit() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    return abs((now if now is not None else time.time()) - int(timestamp)) <= MAX_AGE_SECONDS
