"""Version 1 of the API: one router for every viewset, and root pages that link every endpoint."""

from django.urls import re_path, reverse
from rest_framework import routers
from rest_framework.response import Response

from market_data.api.views import AssetViewSet
from portfolios.api.views import PortfolioViewSet
from refresh.api.views import (
    AllRefreshViewSet,
    BenchmarkRefreshViewSet,
    PortfolioRefreshViewSet,
    PricesRefreshViewSet,
    RefreshRunViewSet,
    StrategyRefreshViewSet,
)

REFRESH = "manual/refresh/"
# Every endpoint a root links: its path under /api/v1/ and its URL name. The plain APIViews
# (metrics, webhooks) are routed by their apps' urls.py, not by the router.
ENDPOINTS = {
    "manual/refresh": "refresh-root",
    "manual/refresh/all": "refresh-all-list",
    "manual/refresh/prices": "refresh-prices-list",
    "manual/refresh/portfolio": "refresh-portfolio-list",
    "manual/refresh/strategy": "refresh-strategy-list",
    "manual/refresh/benchmark": "refresh-benchmark-list",
    "manual/refresh/runs": "refresh-run-list",
    "manual/refresh/metrics": "refresh-metrics",
    "manual/refresh/metrics/prometheus": "refresh-metrics-prometheus",
    "manual/refresh/webhooks": "webhook",
    "portfolios": "portfolio-list",
    "assets": "asset-list",
}


class APIRootView(routers.APIRootView):
    """Every endpoint of the API, linked: follow a link to read it, or to start a refresh there.

    `manual/refresh/portfolio` links your own portfolios' refresh; put another user's id in its
    path for theirs. `manual/refresh/webhooks` is a template: a webhook source's name replaces
    `{source}`. Navigation only, so the OpenAPI schema leaves these pages out.
    """

    api_root_dict: dict[str, str] = ENDPOINTS
    prefix = ""  # link only the endpoints under this path, named relative to it

    def get(self, request, *args, **kwargs):
        return Response(
            {
                key.removeprefix(self.prefix): self.link(request, url_name)
                for key, url_name in self.api_root_dict.items()
                if key.startswith(self.prefix)
            }
        )

    @staticmethod
    def link(request, url_name: str) -> str:
        if url_name == "webhook":  # a URI template: reversed with a valid name, then the placeholder put in
            base = reverse(url_name, kwargs={"source": "source"}).removesuffix("source")
            return request.build_absolute_uri(base) + "{source}/"
        kwargs = {"target_user_id": request.user.pk} if url_name == "refresh-portfolio-list" else {}
        path = reverse(url_name, kwargs=kwargs)
        # Routes take an optional trailing slash, which reverse() leaves out; the README shows it.
        return request.build_absolute_uri(path if path.endswith("/") else path + "/")


class APIRouter(routers.DefaultRouter):
    """DefaultRouter with the trailing slash optional, no format-suffix routes (?format= does
    that) and a root that links the endpoints routed outside the router too."""

    include_format_suffixes = False
    APIRootView = APIRootView

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"

    def get_api_root_view(self, api_urls=None):
        return self.APIRootView.as_view()


router = APIRouter()
router.register(r"manual/refresh/all", AllRefreshViewSet, basename="refresh-all")
router.register(r"manual/refresh/prices", PricesRefreshViewSet, basename="refresh-prices")
router.register(
    r"manual/refresh/portfolio/(?P<target_user_id>[0-9]{1,18})", PortfolioRefreshViewSet, basename="refresh-portfolio"
)
router.register(r"manual/refresh/strategy", StrategyRefreshViewSet, basename="refresh-strategy")
router.register(r"manual/refresh/benchmark", BenchmarkRefreshViewSet, basename="refresh-benchmark")
router.register(r"manual/refresh/runs", RefreshRunViewSet, basename="refresh-run")
router.register(r"portfolios", PortfolioViewSet, basename="portfolio")
router.register(r"assets", AssetViewSet, basename="asset")

urlpatterns = [
    *router.urls,
    re_path(r"^manual/refresh/?$", APIRootView.as_view(prefix=REFRESH), name="refresh-root"),
]
