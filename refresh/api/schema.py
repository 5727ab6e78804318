"""OpenAPI descriptions of the refresh API's operations: tags, parameters and every response they give."""

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)

from core.api.schema import documented_error
from refresh.api.serializers import (
    ActiveRunStatusSerializer,
    FinishedRunStatusSerializer,
    PrioritySerializer,
    RefreshPlanSerializer,
    RefreshRequestSerializer,
    RefreshRunListSerializer,
    RefreshRunSerializer,
    RetrySerializer,
    RunSymbolSerializer,
)

# A run's status has one of two shapes: while it is active, and once it has finished.
RUN_STATUS = PolymorphicProxySerializer(
    component_name="RunStatus",
    serializers=[ActiveRunStatusSerializer, FinishedRunStatusSerializer],
    resource_type_field_name=None,
)


class StrictFilterExtension(DjangoFilterExtension):
    """Query filters as django-filter documents them, each also taking an empty value: like
    django-filter, StrictFilterBackend reads one as no filter (the browsable API's filter form
    sends every field)."""

    target_class = "refresh.api.filters.StrictFilterBackend"
    priority = 1  # before the extension it extends, which matches subclasses too

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        parameters = super().get_schema_operation_parameters(auto_schema, *args, **kwargs)
        return [{**parameter, "allowEmptyValue": True} for parameter in parameters]


_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional, 1-255 printable characters. The same key with the same request returns the run it "
    "first started, whatever its state, for 24 hours (200, no rate limit spent); with another request, 422.",
)
_STARTED = {
    202: OpenApiResponse(RUN_STATUS, description="Queued; Location names the run."),
    200: OpenApiResponse(
        description="The identical active run (deduplicated), the run an Idempotency-Key started, "
        "or the finished run when `wait` sufficed.",
    ),
    403: documented_error("forbidden: your role may not start this refresh (or defer one: run_at)."),
    429: documented_error("rate_limited, cooldown or burst; see retry_after and the Retry-After header."),
}

# A trigger's 200 has two shapes: a run's status, or a dry run's plan (which alone has dry_run: true).
_STARTED_OR_PLANNED = {
    **_STARTED,
    200: OpenApiResponse(
        PolymorphicProxySerializer(
            component_name="RunStatusOrPlan",
            serializers=[RUN_STATUS, RefreshPlanSerializer],
            resource_type_field_name=None,
        ),
        description="A run's status: the identical active run (deduplicated), the run an Idempotency-Key started, "
        'or the finished run when `wait` sufficed. With `"dry_run": true`, the plan instead (`RefreshPlan`, '
        "`dry_run` is true): what the run would fetch, spend and recalculate and which active runs it would join "
        "or wait for; nothing is started, recorded or spent. Validation and permissions answer as for the real "
        "request.",
    ),
}

_NOT_FOUND = documented_error("not_found: no such run or user, or a run that is not yours.")
_NO_SUCH_PAGE = documented_error("not_found: no such page.")

trigger_schema = extend_schema_view(
    create=extend_schema(
        tags=["Start a refresh"],
        summary="Start a refresh of this kind",
        request=RefreshRequestSerializer,
        parameters=[_IDEMPOTENCY_KEY],
        responses={
            **_STARTED_OR_PLANNED,
            400: documented_error(
                "invalid_request (also `wait` with `dry_run` or `run_at`), malformed_json, invalid_symbols, "
                "unknown_symbols, invalid_run_at or "
                "invalid_idempotency_key; nothing changed."
            ),
            404: documented_error("not_found: no such user."),
            422: documented_error("idempotency_key_reused: the key was sent with a different request."),
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
        responses={
            200: RefreshRunListSerializer(many=True),
            400: documented_error("invalid_filter: an unknown filter, or a malformed value; nothing is listed."),
            404: _NO_SUCH_PAGE,
        },
    ),
    retrieve=extend_schema(
        tags=["Runs"],
        summary="One run with its step timeline",
        responses={200: RefreshRunSerializer, 404: _NOT_FOUND},
    ),
    partial_update=extend_schema(
        tags=["Runs"],
        summary="Reprioritise a queued run",
        request=PrioritySerializer,
        responses={
            200: OpenApiResponse(RUN_STATUS, description="The run at its new priority (a step records it)."),
            400: documented_error("invalid_request: no or an unknown priority."),
            403: documented_error("forbidden: only the requester or an admin, and only to a priority your role has."),
            404: _NOT_FOUND,
            409: documented_error("not_queued: a worker has started the run, or it finished."),
        },
    ),
    retry=extend_schema(
        tags=["Runs"],
        summary="Retry a failed, partial, timed-out or cancelled run",
        description="Starts a new run linked to this one (`retry_of`); a prices run retries only its failed "
        "symbols unless `all_symbols`. Permissions and rate limits apply as to any request.",
        request=RetrySerializer,
        responses={
            **_STARTED,
            400: documented_error("invalid_request: a malformed body."),
            404: _NOT_FOUND,
            409: documented_error("not_retryable: the run is active or succeeded."),
        },
    ),
    symbols=extend_schema(
        tags=["Runs"],
        summary="Each symbol's outcome in a run",
        description="Every symbol the run dealt with, by symbol: `updated`, `unchanged`, `skipped` (smart mode), "
        "`failed` or `quarantined`, the last two with the reason. Listed once the run has ended; a run that "
        "stopped early lists what it did.",
        responses={
            200: RunSymbolSerializer(many=True),
            400: documented_error("invalid_filter: an unknown filter, or an unknown outcome; nothing is listed."),
            404: documented_error("not_found: no such run, a run that is not yours, or no such page."),
        },
    ),
    cancel=extend_schema(
        tags=["Runs"],
        summary="Cancel a queued or running run",
        request=None,
        responses={
            200: OpenApiResponse(RUN_STATUS, description="Cancelled, or asked to stop at its next batch."),
            403: documented_error("forbidden: only the requester or an admin may cancel."),
            404: _NOT_FOUND,
            409: documented_error("not_cancellable: the run has already finished."),
        },
    ),
)
