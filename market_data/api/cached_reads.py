"""The asset reads the read cache keeps, and which of them a change of assets touches.

``asset-list:page:<n>`` is a page of the asset list, ``asset-prices:<symbol>`` an asset's whole
history (the view cuts the requested window from it); each holds its endpoint's serializer's
rendering, built here for the views and for warming alike.
"""

from collections.abc import Iterable

from core.api.pagination import CachedPagePagination
from core.read_cache import CachedRead
from market_data import selectors

from .serializers import AssetSerializer, PriceHistorySerializer


def asset_page_read(*, page: int) -> CachedRead:
    return CachedRead(
        f"asset-list:page:{page}",
        lambda: CachedPagePagination().render_page(selectors.asset_list(), AssetSerializer, number=page),
    )


def price_series_read(symbol: str) -> CachedRead:
    def build():
        asset = selectors.asset_history(symbol=symbol)
        return None if asset is None else PriceHistorySerializer(asset).data

    return CachedRead(f"asset-prices:{symbol}", build)


def reads_showing(*, symbols: Iterable[str] | None) -> list[CachedRead]:
    """Every read whose content depends on these assets (None: all of them): an asset appears in
    its price series and on one page of the asset list."""
    symbols = sorted(set(selectors.all_symbols() if symbols is None else symbols))
    pages = selectors.asset_list_pages(symbols=symbols, size=CachedPagePagination().get_page_size())
    return [*(price_series_read(symbol) for symbol in symbols), *(asset_page_read(page=page) for page in sorted(pages))]
