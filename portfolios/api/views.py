"""Portfolio read API: the requester's own portfolios (admins and support: everyone's), cached."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core import read_cache
from core.api.cache_header import CACHE_NOTE, with_cache_header
from core.api.pagination import PAGE_ERRORS, CachedPagePagination, PageQuerySerializer
from core.api.schema import documented_error
from core.roles import Role, role_of

from .cached_reads import portfolio_page_read, portfolio_read
from .serializers import PortfolioDetailSerializer, PortfolioSummarySerializer


def _owner_filter(user) -> int | None:
    """None when the user sees every portfolio (admins and support), else the user's own id."""
    return None if role_of(user) in (Role.ADMIN, Role.SUPPORT) else user.pk


class PortfolioViewSet(viewsets.ViewSet):
    """Portfolios with their holdings and the figures the refresh keeps current."""

    lookup_value_regex = "[0-9]{1,18}"
    pagination_class = CachedPagePagination

    @extend_schema(
        tags=["Portfolios"],
        summary="Your portfolios (admins and support: everyone's)",
        description=CACHE_NOTE,
        parameters=[PageQuerySerializer],
        responses={200: PortfolioSummarySerializer(many=True), **PAGE_ERRORS},
    )
    def list(self, request):
        self.paginator = self.pagination_class()
        number = self.paginator.get_page_number(request)
        page, hit = read_cache.fetch(portfolio_page_read(owner_id=_owner_filter(request.user), page=number))
        return with_cache_header(self.paginator.get_cached_response(request, page, number=number), hit=hit)

    @extend_schema(
        tags=["Portfolios"],
        summary="One portfolio in full",
        description=CACHE_NOTE,
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={
            200: PortfolioDetailSerializer,
            404: documented_error("not_found: no such portfolio, or not yours."),
        },
    )
    def retrieve(self, request, pk=None):
        data, hit = read_cache.fetch(portfolio_read(int(pk)))
        owner = _owner_filter(request.user)
        if data is None or owner not in (None, data["owner"]["id"]):
            raise NotFound("No such portfolio.")
        return with_cache_header(Response(data), hit=hit)
