"""OpenAPI descriptions of the refresh API: the response shapes no serializer renders, per view."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from refresh.api.serializers import RefreshRequestSerializer, RefreshRunListSerializer, RefreshRunSerializer
from refresh.models import RefreshKind, RefreshMode, RunPriority, RunSource, RunStatus


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine code, e.g. invalid_request, forbidden, rate_limited.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(required=False, help_text="invalid_request only: messages per field.")
    retry_after = serializers.IntegerField(required=False, help_text="Rate limits only: seconds to wait.")


class ErrorResponseSerializer(serializers.Serializer):
    """Every error of the API has this shape."""

    status = serializers.ChoiceField(choices=["error"])
    error = ErrorDetailSerializer()


class RunStatusSerializer(serializers.Serializer):
    """A run's status: progress fields while it is active, its outcome once it has finished."""

    status = serializers.ChoiceField(choices=RunStatus.choices)
    refresh_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=RefreshKind.choices)
    mode = serializers.ChoiceField(choices=RefreshMode.choices)
    priority = serializers.ChoiceField(choices=[p.label for p in RunPriority], required=False,
                                       help_text="Active runs only.")
    progress = serializers.FloatField(required=False, help_text="Active runs only: 0 to 1.")
    current_step = serializers.CharField(required=False, help_text="Active runs only.")
    estimated_completion = serializers.DateTimeField(required=False, allow_null=True,
                                                     help_text="Active runs only.")
    timestamp = serializers.DateTimeField(required=False, help_text="Finished runs only: when it finished.")
    duration_ms = serializers.IntegerField(required=False, help_text="Finished runs only.")
    items_updated = serializers.DictField(child=serializers.IntegerField(), required=False,
                                          help_text="Finished runs only: prices, bars, portfolios, metrics, ...")
    provider_calls = serializers.IntegerField(required=False, help_text="Finished runs only.")
    reason = serializers.CharField(required=False, help_text="Skipped runs only: why nothing was done.")
    errors = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="Finished runs other than success: errors and failed symbols.")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorResponseSerializer, description=description)


_NOT_FOUND = _error("not_found: no such run or user, or a run that is not yours.")
_NO_SUCH_PAGE = _error("not_found: no such page.")

trigger_schema = extend_schema_view(
    create=extend_schema(
        tags=["Start a refresh"],
        summary="Start a refresh of this kind",
        request=RefreshRequestSerializer,
        responses={
            202: OpenApiResponse(RunStatusSerializer, description="Queued; Location names the run."),
            200: OpenApiResponse(RunStatusSerializer, description="The identical active run (deduplicated), "
                                                                  "or the finished run when `wait` sufficed."),
            400: _error("invalid_request, malformed_json, invalid_symbols or unknown_symbols; nothing changed."),
            403: _error("forbidden: your role may not start this refresh."),
            404: _error("not_found: no such user."),
            429: _error("rate_limited, cooldown or burst; see retry_after and the Retry-After header."),
        },
    ),
    list=extend_schema(
        tags=["Start a refresh"],
        summary="Recent runs of this kind",
        responses={200: RefreshRunListSerializer(many=True), 404: _NO_SUCH_PAGE},
    ),
)

run_schema = extend_schema_view(
    list=extend_schema(
        tags=["Runs"],
        summary="Runs you may see, newest first",
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=RefreshKind.values),
            OpenApiParameter("status", OpenApiTypes.STR, enum=RunStatus.values),
            OpenApiParameter("mode", OpenApiTypes.STR, enum=RefreshMode.values),
            OpenApiParameter("source", OpenApiTypes.STR, enum=RunSource.values),
        ],
        responses={200: RefreshRunListSerializer(many=True),
                   400: _error("invalid_filter: a filter's value is none of its choices."), 404: _NO_SUCH_PAGE},
    ),
    retrieve=extend_schema(
        tags=["Runs"],
        summary="One run with its step timeline",
        responses={200: RefreshRunSerializer, 404: _NOT_FOUND},
    ),
    cancel=extend_schema(
        tags=["Runs"],
        summary="Cancel a queued or running run",
        request=None,
        responses={
            200: OpenApiResponse(RunStatusSerializer, description="Cancelled, or asked to stop at its next batch."),
            403: _error("forbidden: only the requester or an admin may cancel."),
            404: _NOT_FOUND,
            409: _error("not_cancellable: the run has already finished."),
        },
    ),
)


_ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def document_common_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the errors any operation of its shape can answer.

    An address whose path parameter does not match is a 404 before any view runs, a body can be
    malformed, too large or of an unsupported type, and a protected operation is a 401 without
    credentials; each operation's own descriptions of these codes win.
    """
    def error(description: str) -> dict:
        return {"description": description, "content": _ERROR_SCHEMA}

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation["responses"]
            if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
                responses.setdefault("404", error("not_found: nothing at this address."))
            if "requestBody" in operation:
                responses.setdefault("400", error("malformed_json or invalid_request; nothing changed."))
                responses.setdefault("413", error("request_too_large: the body is larger than allowed."))
                responses.setdefault("415", error("unsupported_media_type: a body in another format."))
            if operation.get("security") and {} not in operation["security"]:  # {}: anonymous allowed
                responses.setdefault("401", error("not_authenticated: no or a bad token or session."))
            operation["responses"] = dict(sorted(responses.items()))
    return result
