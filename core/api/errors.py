"""One JSON error shape for every API failure: {"status": "error", "error": {code, message}}.

DRF's exception handler covers what a view raises; the Django error views (handler400, 403,
404 and 500 in the root URLconf) cover what happens outside one - an unknown address, a body
too large for Django, a bug - and answer JSON under /api/, Django's usual pages elsewhere.
"""

from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import DomainError

API_PREFIX = "/api/"

_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}

# Django refusing a request (a body too large, too many fields): the client's doing, never a 500.
_TOO_LARGE = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large", "The request body is larger than allowed."
_UNREADABLE = HTTPStatus.BAD_REQUEST, "bad_request", "The request could not be read."


def error_body(*, code: str, message: str, **extra) -> dict:
    return {"status": "error", "error": {"code": code, "message": message, **extra}}


def error_response(*, code: str, message: str, http_status: int, headers: dict | None = None, **extra) -> Response:
    return Response(error_body(code=code, message=message, **extra), status=http_status, headers=headers)


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
    if isinstance(exc, DomainError):
        if exc.retry_after is None:
            return error_response(code=exc.code, message=exc.message, http_status=exc.status_code)
        return error_response(
            code=exc.code,
            message=exc.message,
            http_status=exc.status_code,
            retry_after=exc.retry_after,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, SuspiciousOperation):
        http_status, code, message = _refusal(exc)
        return error_response(code=code, message=message, http_status=http_status)
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
    response.data = error_body(code=code, message=_first_message(detail), **extra)
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.data["error"]["code"] = "not_authenticated"
    return response


def _refusal(exc) -> tuple[int, str, str]:
    return _TOO_LARGE if isinstance(exc, RequestDataTooBig) else _UNREADABLE


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json_error(http_status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code=code, message=message), status=http_status)


def bad_request(request, exception):
    """handler400: a request Django itself refused; an oversized body is a 413 under /api/."""
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    return _json_error(*_refusal(exception))


def _api_or_default(default_view, http_status: int, code: str, message: str):
    """An error view: the JSON envelope under /api/, Django's own page elsewhere."""

    def view(request, *args, **kwargs):
        if not _is_api(request):
            return default_view(request, *args, **kwargs)
        return _json_error(http_status, code, message)

    return view


# handler403, handler404 (no view at this address; a view's own 404s come through DRF) and
# handler500 (a bug: nothing about it reaches the client, the log has the traceback).
permission_denied = _api_or_default(
    defaults.permission_denied, HTTPStatus.FORBIDDEN, "forbidden", "You may not do this."
)
page_not_found = _api_or_default(defaults.page_not_found, HTTPStatus.NOT_FOUND, "not_found", "No such endpoint.")
server_error = _api_or_default(
    defaults.server_error, HTTPStatus.INTERNAL_SERVER_ERROR, "server_error", "Something went wrong on our side."
)
