"""A logging filter that hides API keys, tokens and secrets in every record a handler writes.

Three nets: attributes whose name says secret (``api_key``, ``token``, ``secret``...), text
patterns (``apikey=...``, ``Authorization: Token ...``, ``"secret": "..."``), and the literal
values of secrets this process knows (the Twelve Data key, the Django secret key, webhook
secrets once used).
"""

import logging
import re

from django.conf import settings

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"(api[_-]?key|apikey|secret|token|password|passwd|authorization|signature|cookie|"
    r"credential|sessionid|csrf)",
    re.IGNORECASE,
)
_PATTERNS = [
    # apikey=..., token=..., secret=... in query strings and key=value text
    re.compile(r"(?i)\b((?:api[_-]?key|apikey|access[_-]?token|token|secret|password|signature)=)[^&\s'\"]+"),
    # Authorization headers, whatever the scheme
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:token\s+|bearer\s+|apikey\s+|basic\s+)?)[^\s'\",}]+"),
    # "Token abc...", "Bearer abc...", "apikey abc..." with a credential-sized value
    re.compile(r"(?i)\b((?:token|bearer|apikey)\s+)[A-Za-z0-9._~+/=-]{20,}"),
    # "secret": "..." in JSON or repr text
    re.compile(r"(?i)(['\"](?:[a-z_]*(?:secret|token|password|api_?key))['\"]\s*:\s*['\"])[^'\"]+"),
    # sha256=<hex> signatures
    re.compile(r"(?i)(sha256=)[0-9a-f]{16,}"),
]
_MIN_SECRET_LENGTH = 8
_MAX_KNOWN_SECRETS = 10_000  # bounds the memory a stream of distinct secrets can take
_MAX_DEPTH = 8  # nesting deeper than this is redacted whole rather than walked
_known_secrets: set[str] = set()
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def remember_secret(value: str | None) -> None:
    """Redact this value wherever it appears from now on (in this process)."""
    if value and len(value) >= _MIN_SECRET_LENGTH and len(_known_secrets) < _MAX_KNOWN_SECRETS:
        _known_secrets.add(value)


def _configured_secrets() -> list[str]:
    values = [getattr(settings, "TWELVEDATA_API_KEY", ""), getattr(settings, "SECRET_KEY", "")]
    return [v for v in values if v and len(v) >= _MIN_SECRET_LENGTH]


def redact_text(text: str) -> str:
    """Replace known secret values and secret-looking patterns in a string."""
    for value in sorted({*_known_secrets, *_configured_secrets()}, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact(value, *, depth: int = 0):
    """Redact a log value: strings by content, mappings also by key name, anything else as text."""
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_NAME.search(k) else redact(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact(v, depth=depth + 1) for v in value]
    return redact_text(str(value))


class RedactSecretsFilter(logging.Filter):
    """Rewrites the record in place: message, extra attributes and the formatted traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call must still be logged, redacted
            message = f"{record.msg} {record.args}"
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name in [n for n in vars(record) if n not in _STANDARD_ATTRS]:
            value = getattr(record, name)
            setattr(record, name, REDACTED if _SECRET_NAME.search(name) else redact(value))
        return True
