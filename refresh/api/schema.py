"""OpenAPI descriptions of the refresh API's operations: tags, parameters and every response they give."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view

from core.api.schema import documented_error
from refresh.api.serializers import (
    RefreshRequestSerializer,
    RefreshRunListSerializer,
    RefreshRunSerializer,
    RunStatusSerializer,
)
from refresh.models import RefreshKind, RefreshMode, RunSource, RunStatus

_NOT_FOUND = documented_error("not_found: no such run or user, or a run that is not yours.")
_NO_SUCH_PAGE = documented_error("not_found: no such page.")

trigger_schema = extend_schema_view(
    create=extend_schema(
        tags=["Start a refresh"],
        summary="Start a refresh of this kind",
        request=RefreshRequestSerializer,
        responses={
            202: OpenApiResponse(RunStatusSerializer, description="Queued; Location names the run."),
            200: OpenApiResponse(
                RunStatusSerializer,
                description="The identical active run (deduplicated), or the finished run when `wait` sufficed.",
            ),
            400: documented_error(
                "invalid_request, malformed_json, invalid_symbols or unknown_symbols; nothing changed."
            ),
            403: documented_error("forbidden: your role may not start this refresh."),
            404: documented_error("not_found: no such user."),
            429: documented_error("rate_limited, cooldown or burst; see retry_after and the Retry-After header."),
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
        responses={
            200: RefreshRunListSerializer(many=True),
            400: documented_error("invalid_filter: a filter's value is none of its choices."),
            404: _NO_SUCH_PAGE,
        },
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
            403: documented_error("forbidden: only the requester or an admin may cancel."),
            404: _NOT_FOUND,
            409: documented_error("not_cancellable: the run has already finished."),
        },
    ),
)
