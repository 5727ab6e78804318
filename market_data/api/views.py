"""Asset read API: every asset with its latest quote, and an asset's daily prices, cached."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core import read_cache
from core.api.cache_header import CACHE_NOTE, with_cache_header
from core.api.pagination import PAGE_ERRORS, CachedPagePagination, PageQuerySerializer
from core.api.schema import documented_error

from .cached_reads import asset_page_read, price_series_read
from .serializers import AssetSerializer, PriceRangeQuerySerializer, PriceWindowSerializer, price_window


class AssetViewSet(viewsets.ViewSet):
    """Assets the refresh keeps current, and their stored daily history."""

    lookup_field = "symbol"
    # Symbols may hold a slash (BTC/USD); the shortest match leaves "/prices" to the route.
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9.\-/:]{0,19}?"
    pagination_class = CachedPagePagination

    @extend_schema(
        tags=["Assets"],
        summary="Every asset with its latest quote, by symbol",
        description=CACHE_NOTE,
        parameters=[PageQuerySerializer],
        responses={200: AssetSerializer(many=True), **PAGE_ERRORS},
    )
    def list(self, request):
        self.paginator = self.pagination_class()
        number = self.paginator.get_page_number(request)
        page, hit = read_cache.fetch(asset_page_read(page=number))
        return with_cache_header(self.paginator.get_cached_response(request, page, number=number), hit=hit)

    @extend_schema(
        tags=["Assets"],
        summary="An asset's daily prices between two days",
        description=CACHE_NOTE,
        parameters=[
            OpenApiParameter("symbol", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. AAPL or BTC/USD"),
            PriceRangeQuerySerializer,
        ],
        responses={
            200: PriceWindowSerializer,
            400: documented_error("invalid_request: a malformed date, or start after end."),
            404: documented_error("not_found: no such asset."),
        },
    )
    @action(detail=True)
    def prices(self, request, symbol=None):
        query = PriceRangeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbol = symbol.upper()
        history, hit = read_cache.fetch(price_series_read(symbol))
        if history is None:
            raise NotFound(f"No asset {symbol}.")
        return with_cache_header(Response(price_window(history, **query.validated_data)), hit=hit)
