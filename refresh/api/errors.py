"""One JSON error shape for every API failure: {"status": "error", "error": {code, message}}."""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from refresh.errors import RefreshError
from refresh.services.rate_limits import RateLimitExceeded

_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}


def error_response(*, code: str, message: str, http_status: int, headers: dict | None = None, **extra) -> Response:
    return Response({"status": "error", "error": {"code": code, "message": message, **extra}}, status=http_status,
                    headers=headers)


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        text = _first_message(value)
        return text if field == "non_field_errors" else f"{field}: {text}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def json_exception_handler(exc, context):
    """Wrap DRF's handling so every error has a stable code and a human message."""
    if isinstance(exc, RateLimitExceeded):
        return error_response(code=exc.code, message=exc.message, http_status=exc.status_code,
                              retry_after=exc.retry_after, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, RefreshError):
        return error_response(code=exc.code, message=exc.message, http_status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You may not do this.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), "error")
    detail = getattr(exc, "detail", str(exc))
    extra = {"fields": detail} if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict) else {}
    response.data = {"status": "error", "error": {"code": code, "message": _first_message(detail), **extra}}
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.data["error"]["code"] = "not_authenticated"
    return response
