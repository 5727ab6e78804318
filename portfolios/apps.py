"""App config for portfolios, strategies and their calculated analytics."""

from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
