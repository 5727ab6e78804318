"""Test settings: the real settings, with only what tests need changed."""

import os

# The real settings refuse to start without a secret key when DEBUG is off, as tests run.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")

from .settings import *  # noqa: F403
from .settings import DATABASES, Q_CLUSTER

# Tests run queued tasks in the calling process unless a test starts a real qcluster.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MARKET_DATA_PROVIDER = "mock"
TWELVEDATA_API_KEY = ""
MOCK_PROVIDER_LATENCY = 0.0
MOCK_PROVIDER_FAIL_SYMBOLS = []
# No credit limits unless a test sets them, and retries that do not wait.
MARKET_DATA_CREDITS_PER_MINUTE = 0
MARKET_DATA_CREDITS_PER_DAY = 0
MARKET_DATA_RETRY_BACKOFF_SECONDS = 0.0
REFRESH_HISTORY_YEARS = 2
# TEST_DB_SUFFIX lets several test runs share a machine without sharing a database.
_suffix = env("TEST_DB_SUFFIX", default="")  # noqa: F405
if USING_SQLITE:  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test{_suffix}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_suffix}"}
# Templates name static files as they are; collectstatic's manifest exists only in deployments.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# WhiteNoise serves straight from the apps' static folders: tests run no collectstatic.
WHITENOISE_AUTOREFRESH = WHITENOISE_USE_FINDERS = True
