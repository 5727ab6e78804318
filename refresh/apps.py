"""App config for the manual refresh system."""
from django.apps import AppConfig


class RefreshConfig(AppConfig):
    name = "refresh"
    verbose_name = "Manual refresh"
