"""Market-data providers and the factory that picks one from settings."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import (
    BatchResult,
    History,
    MarketDataProvider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    QuoteData,
)
from .mock import MockProvider
from .twelvedata import TwelveDataClient

__all__ = [
    "BatchResult",
    "History",
    "MarketDataProvider",
    "MockProvider",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimited",
    "QuoteData",
    "TwelveDataClient",
    "get_provider",
]


def get_provider() -> MarketDataProvider:
    """The provider MARKET_DATA_PROVIDER names, configured from settings."""
    kind = settings.MARKET_DATA_PROVIDER
    if kind == "mock":
        return MockProvider(
            seed=settings.MOCK_PROVIDER_SEED,
            latency=settings.MOCK_PROVIDER_LATENCY,
            fail_symbols=settings.MOCK_PROVIDER_FAIL_SYMBOLS,
            batch_size=settings.TWELVEDATA_BATCH_SIZE,
        )
    if kind == "twelvedata":
        if not settings.TWELVEDATA_API_KEY:
            raise ImproperlyConfigured(
                "MARKET_DATA_PROVIDER is 'twelvedata' but TWELVEDATA_API_KEY is empty: "
                "set the key, or set MARKET_DATA_PROVIDER=mock."
            )
        return TwelveDataClient(
            api_key=settings.TWELVEDATA_API_KEY,
            base_url=settings.TWELVEDATA_BASE_URL,
            batch_size=settings.TWELVEDATA_BATCH_SIZE,
            connect_timeout=settings.TWELVEDATA_CONNECT_TIMEOUT,
            read_timeout=settings.TWELVEDATA_READ_TIMEOUT,
        )
    raise ImproperlyConfigured(f"MARKET_DATA_PROVIDER must be 'mock' or 'twelvedata', not {kind!r}.")
