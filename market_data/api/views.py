"""Asset read API: every asset with its latest quote, and an asset's daily prices, cached."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound

from market_data.selectors import price_window
from refresh.services import data_cache

from .responses import (
    CACHE_NOTE, PAGE_ERRORS, PageQuerySerializer, cached_response, error, page_response, requested_page,
)
from .serializers import AssetPageSerializer, PriceRangeQuerySerializer, PriceWindowSerializer


class AssetViewSet(viewsets.ViewSet):
    """Assets the refresh keeps current, and their stored daily history."""

    @extend_schema(tags=["Assets"], summary="Every asset with its latest quote, by symbol", description=CACHE_NOTE,
                   parameters=[PageQuerySerializer],
                   responses={200: AssetPageSerializer, **PAGE_ERRORS})
    def list(self, request):
        page = requested_page(request)
        data, hit = data_cache.fetch(data_cache.asset_page_read(page=page))
        return page_response(request, data=data, page=page, size=data_cache.page_size(), hit=hit)

    @extend_schema(tags=["Assets"], summary="An asset's daily prices between two days", description=CACHE_NOTE,
                   parameters=[OpenApiParameter("symbol", OpenApiTypes.STR, OpenApiParameter.PATH,
                                                description="e.g. AAPL or BTC/USD"), PriceRangeQuerySerializer],
                   responses={200: PriceWindowSerializer,
                              400: error("invalid_request: a malformed date, or start after end."),
                              404: error("not_found: no such asset.")})
    def prices(self, request, symbol=None):
        query = PriceRangeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbol = symbol.upper()
        series, hit = data_cache.fetch(data_cache.price_series_read(symbol))
        if series is None:
            raise NotFound(f"No asset {symbol}.")
        return cached_response(price_window(series=series, **query.validated_data), hit=hit)
