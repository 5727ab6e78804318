"""Routes of the manual refresh API; a trailing slash is optional everywhere."""
from django.urls import re_path

from notifications.views import WebhookReceiveView
from refresh.api import metrics, views

_trigger = {"get": "list", "post": "create"}

urlpatterns = [
    re_path(r"^all/?$", views.AllRefreshViewSet.as_view(_trigger), name="refresh-all"),
    re_path(r"^prices/?$", views.PricesRefreshViewSet.as_view(_trigger), name="refresh-prices"),
    re_path(r"^portfolio/(?P<target_user_id>[0-9]{1,18})/?$", views.PortfolioRefreshViewSet.as_view(_trigger),
            name="refresh-portfolio"),
    re_path(r"^strategy/?$", views.StrategyRefreshViewSet.as_view(_trigger), name="refresh-strategy"),
    re_path(r"^benchmark/?$", views.BenchmarkRefreshViewSet.as_view(_trigger), name="refresh-benchmark"),
    re_path(r"^runs/?$", views.RefreshRunViewSet.as_view({"get": "list"}), name="refresh-run-list"),
    re_path(r"^runs/(?P<refresh_id>ref_[A-Za-z0-9_-]+)/?$", views.RefreshRunViewSet.as_view({"get": "retrieve"}),
            name="refresh-run-detail"),
    re_path(r"^runs/(?P<refresh_id>ref_[A-Za-z0-9_-]+)/cancel/?$",
            # The action's own options (a body-less serializer), as a router would pass them.
            views.RefreshRunViewSet.as_view({"post": "cancel"}, **views.RefreshRunViewSet.cancel.kwargs),
            name="refresh-run-cancel"),
    re_path(r"^metrics/?$", metrics.RefreshMetricsView.as_view(), name="refresh-metrics"),
    re_path(r"^metrics/prometheus/?$", metrics.PrometheusMetricsView.as_view(), name="refresh-metrics-prometheus"),
    re_path(r"^webhooks/(?P<source>[a-z0-9][a-z0-9_-]{0,49})/?$", WebhookReceiveView.as_view(),
            name="refresh-webhook"),
]
