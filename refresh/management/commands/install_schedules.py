"""manage.py install_schedules: create or update the routine refresh schedules."""

from django.core.management.base import BaseCommand

from refresh.services.schedules import install_schedules


class Command(BaseCommand):
    help = "Install the django-q2 schedules: incremental prices, nightly full, daily benchmark, reaper."

    def handle(self, *args, **options):
        self.stdout.write(f"{install_schedules()} schedules installed.")
