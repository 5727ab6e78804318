"""Routes of the portfolio read API, under /api/v1/portfolios/; a trailing slash is optional."""
from django.urls import re_path

from .views import PortfolioViewSet

urlpatterns = [
    re_path(r"^$", PortfolioViewSet.as_view({"get": "list"}), name="portfolio-list"),
    re_path(r"^(?P<pk>[0-9]{1,18})/?$", PortfolioViewSet.as_view({"get": "retrieve"}), name="portfolio-detail"),
]
