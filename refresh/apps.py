"""App config for the manual refresh system."""
from django.apps import AppConfig


class RefreshConfig(AppConfig):
    name = "refresh"
    verbose_name = "Manual refresh"

    def ready(self):
        from refresh import checks, receivers  # noqa: F401 - registers the checks, connects the receivers
