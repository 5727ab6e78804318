"""App config for the manual refresh system."""

from django.apps import AppConfig


class RefreshConfig(AppConfig):
    name = "refresh"
    verbose_name = "Manual refresh"

    def ready(self) -> None:
        from refresh import checks, receivers  # noqa: F401, PLC0415 - Django's place to register checks and receivers
