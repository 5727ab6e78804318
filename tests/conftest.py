"""Fixtures shared by the whole suite."""

from datetime import UTC, datetime
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import caches
from django.core.servers.basehttp import WSGIServer
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django.test import override_settings
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from core.counter_cache import CounterCache
from refresh.services.demo import seed_demo
from refresh.services.tracking import forget_memoised_estimates

ROLE_PERMISSIONS = import_module("refresh.migrations.0003_role_groups").ROLE_PERMISSIONS
DEFERRING_GROUPS = import_module("refresh.migrations.0012_deferred_runs").GRANTED_TO

# Django's test server listens with a backlog of 10; tests that connect 50 clients at once
# (tests/refresh/test_orchestration.py) then had a connection reset by the kernel now and then.
WSGIServer.request_queue_size = 128

# Property tests assert what is computed, not how fast: on a busy CI machine Hypothesis's default
# 200 ms deadline per example failed tests that pass alone.
hypothesis_settings.register_profile("project", deadline=None)
hypothesis_settings.load_profile("project")


@receiver(post_migrate, dispatch_uid="tests.restore_role_groups")
def _restore_role_groups(sender, using="default", **kwargs):
    """Transactional tests flush the database, and with it the role groups migrations 0003 and 0012 made."""
    if sender.label != "refresh":
        return
    for name, granted in ROLE_PERMISSIONS.items():
        codenames = [*granted, "defer_runs"] if name in DEFERRING_GROUPS else granted
        group, created = Group.objects.using(using).get_or_create(name=name)
        if created:
            group.permissions.add(
                *Permission.objects.using(using).filter(content_type__app_label="refresh", codename__in=codenames)
            )


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """The file-based data cache (the embedded default) gets a directory of this test run's own."""
    data = settings.CACHES["data"]
    if not data["BACKEND"].endswith("FileBasedCache"):
        yield
        return
    private = {**data, "LOCATION": str(tmp_path_factory.mktemp("data-cache"))}
    with override_settings(CACHES={**settings.CACHES, "data": private}):
        yield


@pytest.fixture(autouse=True)
def _clear_caches():
    """Every test starts with empty caches (rate counters, data cache).

    Rate counters in the database (the embedded default) are test data like any other: a test's
    rows are rolled back or flushed after it, and a test without the database cannot reach them.
    """
    for alias in ("default", "data", "ratelimit"):
        if not isinstance(caches[alias], CounterCache):
            caches[alias].clear()
    forget_memoised_estimates()


@pytest.fixture
def no_rate_limits(settings):
    """For tests about something else that repeat interactive requests (burst, cooldown, hourly off)."""
    settings.RATELIMIT_ENABLE = False


@pytest.fixture
def demo(db):
    """A small demo: 3 users with portfolios and strategies over 10 assets, one year of bars."""
    return seed_demo(users=3, assets=10, years=1)


@pytest.fixture
def admin(demo):
    return get_user_model().objects.get(username="admin")


@pytest.fixture
def alice(demo):
    return get_user_model().objects.get(username="alice")


@pytest.fixture
def bob(demo):
    return get_user_model().objects.get(username="bob")


def _client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin_api(admin):
    return _client_for(admin)


@pytest.fixture
def alice_api(alice):
    return _client_for(alice)


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run what a request queues with on_commit (tasks run inline: Q_CLUSTER sync=True)."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


MARKET_HOURS = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


@pytest.fixture
def in_market_hours(time_machine):
    """For tests that expect a refresh to move prices: the clock inside a trading session (where
    quotes move and the day's bar is not yet final), whatever the wall clock says; time still runs."""
    time_machine.move_to(MARKET_HOURS, tick=True)
