"""Fixtures shared by the whole suite."""
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from rest_framework.test import APIClient

from refresh.services.demo import seed_demo


@pytest.fixture(autouse=True)
def _clear_caches():
    """Every test starts with empty caches (rate counters, data cache)."""
    for alias in ("default", "data"):
        caches[alias].clear()
    yield


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
