"""Routes of the refresh API's plain views, under /api/v1/manual/refresh/; its viewsets are on
the API router (refresh_project/api_router.py). A trailing slash is optional."""

from django.urls import re_path

from refresh.api import monitoring

urlpatterns = [
    re_path(r"^metrics/?$", monitoring.RefreshMetricsView.as_view(), name="refresh-metrics"),
    re_path(r"^metrics/prometheus/?$", monitoring.PrometheusMetricsView.as_view(), name="refresh-metrics-prometheus"),
]
