"""The inbound webhook endpoint: signed by the source, not authenticated as a user."""

from http import HTTPStatus

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import documented_error
from notifications.services.inbound import WebhookEventSerializer, receive_webhook
from notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from refresh.api.schema import RUN_STATUS
from refresh.api.views import run_response


@extend_schema(
    tags=["Webhooks"],
    summary="Start the refresh an external event maps to",
    auth=[],
    request=WebhookEventSerializer,
    parameters=[
        OpenApiParameter(
            TIMESTAMP_HEADER,
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            required=True,
            description="Unix seconds; refused when more than 5 minutes from now.",
        ),
        OpenApiParameter(
            SIGNATURE_HEADER,
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            required=True,
            description='"sha256=" + hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret.',
        ),
    ],
    responses={
        202: OpenApiResponse(RUN_STATUS, description="A run was queued."),
        200: OpenApiResponse(
            RUN_STATUS,
            description="A replayed delivery id: the original run, or "
            '{"status": "duplicate", "refresh_id": null} when '
            "that run was since deleted.",
        ),
        400: documented_error("malformed_body, unknown_event_type or unknown_symbols; nothing changed."),
        401: documented_error(
            "invalid_signature (also for a source that does not exist or is inactive) or "
            "stale_timestamp; nothing changed."
        ),
        403: documented_error("emergency_not_allowed."),
    },
)
class WebhookReceiveView(APIView):
    """POST /webhooks/<source>/: start the refresh the event maps to (202), or find the replayed one (200)."""

    authentication_classes = []  # the HMAC signature is the authentication; no session, so no CSRF
    permission_classes = [AllowAny]

    def post(self, request, source):
        outcome = receive_webhook(
            source_name=source,
            timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            body=request.body,
        )
        if outcome.run is None:  # replay of a delivery whose run was since deleted
            return Response({"status": "duplicate", "refresh_id": None}, status=HTTPStatus.OK)
        return run_response(outcome.run, created=outcome.created)
