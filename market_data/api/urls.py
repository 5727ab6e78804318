"""Routes of the asset read API, under /api/v1/assets/; a trailing slash is optional.

Symbols may hold a slash (BTC/USD), so the symbol pattern allows one before /prices.
"""
from django.urls import re_path

from .views import AssetViewSet

urlpatterns = [
    re_path(r"^$", AssetViewSet.as_view({"get": "list"}), name="asset-list"),
    re_path(r"^(?P<symbol>[A-Za-z0-9][A-Za-z0-9.\-/:]{0,19}?)/prices/?$", AssetViewSet.as_view({"get": "prices"}),
            name="asset-prices"),
]
