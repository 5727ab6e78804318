"""App config for market data: assets, daily bars, latest quotes and providers."""

from django.apps import AppConfig


class MarketDataConfig(AppConfig):
    name = "market_data"
    verbose_name = "Market data"
