"""Retrying provider calls that failed for a passing reason, with tenacity.

Exponential backoff with full jitter (a random wait between zero and base x 2^attempt,
capped), bounded by MARKET_DATA_RETRY_ATTEMPTS and by MARKET_DATA_RETRY_MAX_SECONDS of
total time. Only transient failures are retried: 5xx, timeouts, connection errors and
bodies that are not JSON. Client errors (400/401/403/404/414) are final, and a 429 is the
credit budget's business: it waits for the next minute or stops until midnight UTC.
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from .providers.base import ProviderError, ProviderRateLimited

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient and not isinstance(exc, ProviderRateLimited)


def call_with_retries(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, again after a jittered backoff while it fails transiently; the last error is raised."""
    retrying = Retrying(
        retry=retry_if_exception(is_retryable),
        wait=wait_random_exponential(
            multiplier=settings.MARKET_DATA_RETRY_BACKOFF_SECONDS, max=settings.MARKET_DATA_RETRY_BACKOFF_CAP_SECONDS
        ),
        stop=stop_after_attempt(settings.MARKET_DATA_RETRY_ATTEMPTS)
        | stop_before_delay(settings.MARKET_DATA_RETRY_MAX_SECONDS),
        sleep=sleep,
        reraise=True,
    )
    return retrying(call)
