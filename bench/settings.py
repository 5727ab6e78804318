"""Settings of every benchmark process: the service's own, kept apart from a dev server's data."""

from refresh_project.settings import *  # noqa: F403
from refresh_project.settings import CACHES, Q_CLUSTER, REDIS_URL

DEBUG = False  # with DEBUG on, Django keeps every query of a long run in memory
ROOT_URLCONF = "bench.urls"
Q_CLUSTER = {**Q_CLUSTER, "name": "refresh-bench"}
if REDIS_URL:
    CACHES = {alias: {**cache, "KEY_PREFIX": f"bench-{cache['KEY_PREFIX']}"} for alias, cache in CACHES.items()}
# Benchmark processes serve the API only; no collectstatic manifest to depend on.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
