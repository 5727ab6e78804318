"""WSGI entry point (gunicorn refresh_project.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refresh_project.settings")
application = get_wsgi_application()

# What a process loads once (Django, DRF, every view through the URLconf, numpy, pandas) is
# never garbage. Frozen, it stays out of the collector's passes, which would otherwise scan
# it all on each full collection and hold up whichever request triggered one for
# milliseconds: the slowest requests under load were exactly those. Reading url_patterns
# loads the URLconf, and with it every view.
_ = get_resolver().url_patterns
gc.freeze()
