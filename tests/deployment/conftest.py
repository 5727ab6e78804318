"""Deployment tests: the service's real processes, started as run.sh and the README start them, over HTTP.

They run once per CI run, in scripts/test.sh's PostgreSQL and Redis pass (DATABASE_URL set), and
skip in the embedded pass. Without PostgreSQL or Redis they skip locally and fail when CI is set.
The stacks the selected tests need all start with the package's first test, side by side, and
stop after its last; each makes its own databases, so these tests never use pytest-django's.
"""

import os
from pathlib import Path

import pytest

from tests.deployment.deployments import Services, StackPool

HERE = Path(__file__).resolve().parent

# The stacks each fixture stands for: the session starts every stack a selected test needs, at once.
FIXTURE_STACKS = {
    "runsh": ("runsh",),
    "production": ("production",),
    "embedded": ("embedded",),
    "waiting": ("waiting",),
    "served": ("runsh", "production"),
    "limited": ("embedded", "production"),
    "all_stacks": ("runsh", "production", "embedded", "waiting"),
}


def _in_this_package(item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_configure(config):
    config.addinivalue_line("markers", "deployment: starts the service's real processes (tests/deployment/)")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(
        reason="deployment tests run once, in the PostgreSQL and Redis pass (DATABASE_URL is unset)"
    )
    for item in items:
        if _in_this_package(item):
            item.add_marker(pytest.mark.deployment)
            if not os.environ.get("DATABASE_URL"):
                item.add_marker(skip)


@pytest.fixture(scope="package")
def services() -> Services:
    found = Services(os.environ["DATABASE_URL"], os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    try:
        found.check()
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the services are missing
        message = f"the deployment tests need PostgreSQL and Redis: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="package")
def stacks(services, tmp_path_factory, request):
    pool = StackPool(services, tmp_path_factory.mktemp("stacks"))
    wanted = {
        name
        for item in request.session.items
        if _in_this_package(item)
        for fixture in item.fixturenames
        for name in FIXTURE_STACKS.get(fixture, ())
    }
    pool.start(*sorted(wanted))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="package")
def runsh(stacks):
    """scripts/run.sh: SQLite, ORM broker, one qcluster and runserver, DEBUG off."""
    return stacks.ready("runsh")


@pytest.fixture(scope="package")
def production(stacks):
    """The README's production commands: PostgreSQL, Redis broker, gunicorn -w 4 and a qcluster."""
    return stacks.ready("production")


@pytest.fixture(scope="package")
def embedded(stacks):
    """gunicorn -w 4 on the embedded defaults (SQLite, no Redis), no worker."""
    return stacks.ready("embedded")


@pytest.fixture(scope="package")
def waiting(stacks):
    """Production settings with gunicorn -w 2 and no worker: runs stay queued."""
    return stacks.ready("waiting")


@pytest.fixture(scope="package", params=["runsh", "production"])
def served(stacks, request):
    """Each stack that serves users as documented: run.sh's and production's."""
    return stacks.ready(request.param)


@pytest.fixture(scope="package", params=["embedded", "production"])
def limited(stacks, request):
    """Each configuration with several web workers: embedded defaults and production."""
    return stacks.ready(request.param)


@pytest.fixture(scope="package")
def all_stacks(stacks):
    return [stacks.ready(name) for name in FIXTURE_STACKS["all_stacks"]]
