"""Request id and the access log: one structured record per request, with who, what and how long."""

import json
import logging
import re
import time
import uuid

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.urls import get_resolver

from core.log_context import request_context
from core.roles import role_of

logger = logging.getLogger("refresh.http")
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_VALID_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
_MAX_LOGGED_BODY = 4096
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _client_address(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR", "")


def _content_length(request) -> int | None:
    """The body's declared length (0 without one), or None when the header is not a number."""
    value = request.META.get("CONTENT_LENGTH") or "0"
    return int(value) if _VALID_CONTENT_LENGTH.fullmatch(value) else None


def _parameters(request, length: int) -> dict:
    """Query parameters, plus a small JSON body (already read, so the view can read it again).

    Never raises: what Django refuses here (too many fields, too large a body) it refuses again
    when the view reads it, and answers then.
    """
    try:
        params: dict = {"query": {k: v if len(v) > 1 else v[0] for k, v in request.GET.lists()}}
    except SuspiciousOperation:
        params = {"query": "<refused>"}
    if request.content_type == "application/json" and 0 < length <= _MAX_LOGGED_BODY:
        try:
            params["body"] = json.loads(request.body)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply
            params["body"] = "<malformed JSON>"
        except SuspiciousOperation:
            params["body"] = "<refused>"
    return params


def _who(request) -> tuple[str | None, str]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None, "anonymous"
    return user.get_username(), role_of(user)


class RequestLogMiddleware:
    """Gives each request an id (the client's X-Request-ID if sane), logs it, echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        length = _content_length(request)
        params = _parameters(request, length or 0)
        token = request_context.set({"request_id": request_id})
        began = time.monotonic()
        try:
            if length is None:
                # Django would fail on it as the body is read (a 500): answer with handler400 now.
                response = get_resolver().resolve_error_handler(400)(  # type: ignore[call-arg]  # django-stubs types every handler as handler500, which takes no exception
                    request, BadRequest("Content-Length is not a number.")
                )
            else:
                response = self.get_response(request)
            # DRF authenticates in the view and sets request.user there, so ask afterwards.
            user, role = _who(request)
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "event": "http_request",
                    "method": request.method,
                    "endpoint": request.path,
                    "status_code": response.status_code,
                    "duration_ms": int((time.monotonic() - began) * 1000),
                    "user": user,
                    "role": role,
                    "client_address": _client_address(request),
                    "parameters": params,
                    "user_action": request.method in _UNSAFE_METHODS and user is not None,
                },
            )
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            request_context.reset(token)
