"""Portfolio read API: the requester's own portfolios (admins and support: everyone's), cached."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound

from market_data.api.responses import (
    CACHE_NOTE, PAGE_ERRORS, PageQuerySerializer, cached_response, error, page_response, requested_page,
)
from refresh.models import Role
from refresh.services import access, data_cache

from .serializers import PortfolioDetailSerializer, PortfolioPageSerializer


def _owner_filter(user) -> int | None:
    """None when the user sees every portfolio (admins and support), else the user's own id."""
    return None if access.role_of(user) in (Role.ADMIN, Role.SUPPORT) else user.pk


class PortfolioViewSet(viewsets.ViewSet):
    """Portfolios with their holdings and the figures the refresh keeps current."""

    @extend_schema(tags=["Portfolios"], summary="Your portfolios (admins and support: everyone's)",
                   description=CACHE_NOTE, parameters=[PageQuerySerializer],
                   responses={200: PortfolioPageSerializer, **PAGE_ERRORS})
    def list(self, request):
        page = requested_page(request)
        data, hit = data_cache.fetch(data_cache.portfolio_page_read(owner_id=_owner_filter(request.user), page=page))
        return page_response(request, data=data, page=page, size=data_cache.page_size(), hit=hit)

    @extend_schema(tags=["Portfolios"], summary="One portfolio in full", description=CACHE_NOTE,
                   parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
                   responses={200: PortfolioDetailSerializer,
                              404: error("not_found: no such portfolio, or not yours.")})
    def retrieve(self, request, pk=None):
        data, hit = data_cache.fetch(data_cache.portfolio_read(int(pk)))
        owner = _owner_filter(request.user)
        if data is None or owner not in (None, data["owner"]["id"]):
            raise NotFound("No such portfolio.")
        return cached_response(data, hit=hit)
