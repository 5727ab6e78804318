"""Routes of the manual refresh API; a trailing slash is optional everywhere."""
from django.urls import re_path

from refresh.api import views

_trigger = {"get": "list", "post": "create"}

urlpatterns = [
    re_path(r"^all/?$", views.AllRefreshViewSet.as_view(_trigger), name="refresh-all"),
    re_path(r"^prices/?$", views.PricesRefreshViewSet.as_view(_trigger), name="refresh-prices"),
    re_path(r"^portfolio/(?P<target_user_id>[0-9]+)/?$", views.PortfolioRefreshViewSet.as_view(_trigger),
            name="refresh-portfolio"),
    re_path(r"^strategy/?$", views.StrategyRefreshViewSet.as_view(_trigger), name="refresh-strategy"),
    re_path(r"^benchmark/?$", views.BenchmarkRefreshViewSet.as_view(_trigger), name="refresh-benchmark"),
    re_path(r"^runs/?$", views.RefreshRunViewSet.as_view({"get": "list"}), name="refresh-run-list"),
    re_path(r"^runs/(?P<refresh_id>ref_[A-Za-z0-9_-]+)/?$", views.RefreshRunViewSet.as_view({"get": "retrieve"}),
            name="refresh-run-detail"),
    re_path(r"^runs/(?P<refresh_id>ref_[A-Za-z0-9_-]+)/cancel/?$",
            views.RefreshRunViewSet.as_view({"post": "cancel"}), name="refresh-run-cancel"),
]
