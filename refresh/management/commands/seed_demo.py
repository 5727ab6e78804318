"""manage.py seed_demo: a realistic demo (or a large data set for benchmarks)."""

from django.core.management.base import BaseCommand

from refresh.services.demo import DEMO_ASSETS, DEMO_USERS, seed_demo


class Command(BaseCommand):
    help = "Create demo assets, users with portfolios and strategies, price history and an admin login."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=len(DEMO_USERS))
        parser.add_argument("--assets", type=int, default=len(DEMO_ASSETS))
        parser.add_argument("--years", type=int, default=2, help="Years of daily history to load (0: none).")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        result = seed_demo(
            users=options["users"], assets=options["assets"], years=options["years"], seed=options["seed"]
        )
        self.stdout.write(
            f"Demo ready: {result['users']} users, {result['assets']} assets, "
            f"{result['portfolios_created']} new portfolios, {result['bars']} price bars.\n"
            f"Admin login: {result['admin_username']} / {result['admin_password']}"
        )
