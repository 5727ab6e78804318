"""Monitoring endpoints: the refresh figures as JSON, and the same in Prometheus' text format."""

import hmac

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import authentication, exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.schema import documented_error
from refresh.api.permissions import IsAdminRole, IsSupportRole
from refresh.monitoring import DEFAULT_WINDOW, parse_window, refresh_metrics
from refresh.prometheus import render_prometheus


class DurationFiguresSerializer(serializers.Serializer):
    p50 = serializers.IntegerField(allow_null=True)
    p95 = serializers.IntegerField(allow_null=True)
    max = serializers.IntegerField(allow_null=True)
    count = serializers.IntegerField(help_text="Runs with an outcome and a duration.")


class FiguresSerializer(serializers.Serializer):
    """The figures of one kind, or of all runs."""

    runs = serializers.IntegerField(help_text="Runs requested in the window.")
    runs_per_hour = serializers.FloatField()
    manual = serializers.IntegerField(help_text="Runs from the API, admin, command or a webhook.")
    scheduled = serializers.IntegerField()
    statuses = serializers.DictField(child=serializers.IntegerField())
    active = serializers.IntegerField(help_text="Still queued or in progress.")
    success_rate = serializers.FloatField(allow_null=True, help_text="success / (success, partial, failed, timeout).")
    duration_ms = DurationFiguresSerializer()
    provider_calls = serializers.IntegerField()
    credits_used = serializers.IntegerField()
    cache_impact = serializers.DictField(child=serializers.IntegerField())


class MetricsResponseSerializer(serializers.Serializer):
    """The figures of the runs requested in a window, overall and per kind."""

    status = serializers.ChoiceField(choices=["ok"], default="ok", read_only=True)
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    window_hours = serializers.FloatField()
    overall = FiguresSerializer()
    by_kind = serializers.DictField(child=FiguresSerializer(), help_text="Every kind, with zeros when it did not run.")


_FORBIDDEN = documented_error("forbidden: admin and support only.")


@extend_schema(
    tags=["Monitoring"],
    summary="Refresh figures over a recent window",
    parameters=[
        OpenApiParameter(
            "window", OpenApiTypes.STR, default=DEFAULT_WINDOW, description="Hours or days: 1h, 24h, 7d; at most 90d."
        )
    ],
    responses={200: MetricsResponseSerializer, 400: documented_error("invalid_window."), 403: _FORBIDDEN},
)
class RefreshMetricsView(APIView):
    """GET ?window=24h (hours or days): frequency, success rate, durations, provider use, cache impact."""

    permission_classes = [IsAdminRole | IsSupportRole]

    def get(self, request):
        raw = request.query_params.get("window") or DEFAULT_WINDOW
        figures = refresh_metrics(window=parse_window(raw))
        return Response(MetricsResponseSerializer({"window": raw, **figures}).data)


class ScraperTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <PROMETHEUS_METRICS_TOKEN>``: a scraper, not a user."""

    def authenticate(self, request):
        match authentication.get_authorization_header(request).split():
            case [scheme, credentials] if scheme.lower() == b"bearer":
                pass
            case _:
                return None
        token = settings.PROMETHEUS_METRICS_TOKEN
        if not token or not hmac.compare_digest(credentials, token.encode()):
            raise exceptions.AuthenticationFailed("Invalid metrics token.")
        return AnonymousUser(), "prometheus-scraper"

    def authenticate_header(self, request):
        return 'Bearer realm="metrics"'


class IsScraperOrPublic(BasePermission):
    """The scraper's token, or anyone when PROMETHEUS_METRICS_PUBLIC is set on purpose."""

    def has_permission(self, request, view):
        return request.auth == "prometheus-scraper" or settings.PROMETHEUS_METRICS_PUBLIC


class ScraperTokenScheme(OpenApiAuthenticationExtension):
    target_class = ScraperTokenAuthentication
    name = "prometheusBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "PROMETHEUS_METRICS_TOKEN"}


@extend_schema(
    tags=["Monitoring"],
    summary="The same figures for Prometheus",
    responses={(200, CONTENT_TYPE_LATEST): OpenApiTypes.STR, 403: _FORBIDDEN},
)
class PrometheusMetricsView(APIView):
    """GET: counters and histograms for Prometheus; admins, support or the scraper token only."""

    authentication_classes = [ScraperTokenAuthentication, *APIView.authentication_classes]
    permission_classes = [IsScraperOrPublic | IsAdminRole | IsSupportRole]

    def get(self, request):
        return HttpResponse(render_prometheus(), content_type=CONTENT_TYPE_LATEST)
