"""Idempotency keys: a client retrying a trigger (after a timeout, say) gets its first try's run.

The same requester, key and request (kind, target and body, as validated) return the run the
key first started or joined, for IDEMPOTENCY_WINDOW, whatever that run's state; the same key
with another request is refused (422). A replay spends no rate limit. The key's row is written
in the transaction that records the run, so of two concurrent requests with one key the second
waits for the first and then replays it.
"""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.errors import DomainError
from refresh.errors import IdempotencyKeyReused, InvalidRefreshRequest
from refresh.models import IdempotentRequest, RefreshRun
from refresh.services.access import Requester

IDEMPOTENCY_WINDOW = timedelta(hours=24)
_KEY = re.compile(r"[!-~]{1,255}")  # printable ASCII, as header values should be


def request_fingerprint(request: Mapping[str, object]) -> str:
    """A digest of what the request asks for: equal for requests that would start the same run."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def start_once(
    *, requester: User, key: str | None, fingerprint: str, start: Callable[[], tuple[RefreshRun, bool]]
) -> tuple[RefreshRun, bool]:
    """``start()``'s ``(run, created)`` the first time a key is used; ``(that run, False)`` after.
    Without a key, simply ``start()``.

    Raises InvalidRefreshRequest for a malformed key, IdempotencyKeyReused for a key sent with
    another request, and whatever ``start`` raises (then the key stays unused).
    """
    if key is None:
        return start()
    _check_key(key)
    mine = IdempotentRequest.objects.filter(requester=requester, key=key)
    mine.filter(created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW).delete()  # expired: the key is free again
    replayed = _replay(mine, fingerprint)
    if replayed is not None:
        return replayed, False
    refusal: DomainError | None = None
    try:
        with transaction.atomic():
            try:
                run, created = start()
            except DomainError as error:  # what the refusal counted commits; the key stays unused
                refusal = error
            else:
                IdempotentRequest.objects.create(requester=requester, key=key, fingerprint=fingerprint, run=run)
    except IntegrityError:  # a concurrent request with this key recorded first: replay it
        replayed = _replay(mine, fingerprint)
        if replayed is None:
            raise
        return replayed, False
    if refusal is not None:
        raise refusal
    return run, created


def run_for_key(*, requester: Requester, key: str, fingerprint: str) -> RefreshRun | None:
    """The run a request with this key would replay, writing nothing (a dry run asks); None: the key is free.

    Raises as ``start_once`` does for a malformed key or a key sent with another request.
    """
    _check_key(key)
    if not isinstance(requester, User):  # keys are a signed-in requester's own
        return None
    live = IdempotentRequest.objects.filter(
        requester=requester, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW
    )
    return _replay(live, fingerprint)


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise InvalidRefreshRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.", code="invalid_idempotency_key"
        )


def _replay(mine: QuerySet[IdempotentRequest], fingerprint: str) -> RefreshRun | None:
    used = mine.select_related("run").first()
    if used is None:
        return None
    if used.fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request; use a new key.")
    run: RefreshRun = used.run
    return run
