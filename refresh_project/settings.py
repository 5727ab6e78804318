"""Settings for the refresh service, read from the environment with embedded defaults.

Nothing here needs to be set to run locally: SQLite, an in-process cache, django-q2's ORM
broker and the mock market-data provider are the defaults. Production sets DATABASE_URL,
REDIS_URL and TWELVEDATA_API_KEY.
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_q",
    "market_data",
    "portfolios",
    "refresh",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "refresh_project.urls"
WSGI_APPLICATION = "refresh_project.wsgi.application"
ASGI_APPLICATION = "refresh_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite by default, tuned so the web process and several worker processes can all write:
# WAL lets readers run beside the writer, IMMEDIATE transactions take the write lock up
# front (no lock-upgrade deadlocks) and the timeout makes a writer wait instead of failing.
SQLITE_PATH = env("SQLITE_PATH", default=str(BASE_DIR / "var" / "db.sqlite3"))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
else:
    # Reuse connections between requests and tasks instead of reconnecting each time.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
# "default" holds locks' helpers and rate-limit counters; "data" holds cached read-API
# figures, so that clearing data never resets a rate limit.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    def _redis_cache(prefix):
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }

    CACHES = {"default": _redis_cache("refresh"), "data": _redis_cache("refresh-data")}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
        "data": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "data"},
    }

# --- Background jobs (django-q2) ------------------------------------------------------
# The ORM broker keeps queued tasks in the database: durable with nothing else running.
# Q_BROKER=redis (with REDIS_URL) moves the queue to Redis for lower latency.
Q_BROKER = env("Q_BROKER", default="orm")
Q_CLUSTER = {
    "name": "refresh",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=1860),
    "max_attempts": 1,
    "catch_up": False,
    "poll": 0.2,
    "ack_failures": True,
    "label": "Background tasks",
    "ALT_CLUSTERS": {"emergency": {"workers": 1}},
}
if Q_BROKER == "redis" and REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "refresh.api.errors.json_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
}

# --- Market data ----------------------------------------------------------------------
TWELVEDATA_API_KEY = env("TWELVEDATA_API_KEY", default="")
TWELVEDATA_BASE_URL = env("TWELVEDATA_BASE_URL", default="https://api.twelvedata.com")
TWELVEDATA_BATCH_SIZE = env.int("TWELVEDATA_BATCH_SIZE", default=120)
TWELVEDATA_CONNECT_TIMEOUT = env.float("TWELVEDATA_CONNECT_TIMEOUT", default=5.0)
TWELVEDATA_READ_TIMEOUT = env.float("TWELVEDATA_READ_TIMEOUT", default=30.0)
MARKET_DATA_PROVIDER = env("MARKET_DATA_PROVIDER", default="twelvedata" if TWELVEDATA_API_KEY else "mock")
MOCK_PROVIDER_SEED = env.int("MOCK_PROVIDER_SEED", default=7)
MOCK_PROVIDER_LATENCY = env.float("MOCK_PROVIDER_LATENCY", default=0.0)
MOCK_PROVIDER_FAIL_SYMBOLS = env.list("MOCK_PROVIDER_FAIL_SYMBOLS", default=[])
BENCHMARK_SYMBOL = env("BENCHMARK_SYMBOL", default="SPY")

# --- Refresh behaviour ----------------------------------------------------------------
REFRESH_HISTORY_YEARS = env.int("REFRESH_HISTORY_YEARS", default=5)
REFRESH_QUOTE_FRESHNESS_SECONDS = env.int("REFRESH_QUOTE_FRESHNESS_SECONDS", default=900)
REFRESH_RISK_FREE_RATE = env.float("REFRESH_RISK_FREE_RATE", default=0.04)
REFRESH_MAX_WAIT_SECONDS = 60
REFRESH_LEASE_SECONDS = env.int("REFRESH_LEASE_SECONDS", default=120)
REFRESH_METRICS_CHUNK = env.int("REFRESH_METRICS_CHUNK", default=2000)
REFRESH_WRITE_BATCH = env.int("REFRESH_WRITE_BATCH", default=2000)
# Used for the estimated completion of a kind that has never run yet.
REFRESH_DEFAULT_DURATION_SECONDS = {"all": 60, "prices": 10, "portfolio": 5, "strategy": 10, "benchmark": 10}
# A run past its kind's limit stops between batches and ends as "timeout".
REFRESH_TIME_LIMIT_SECONDS = {"all": 1200, "prices": 600, "portfolio": 120, "strategy": 300, "benchmark": 300}
DATA_CACHE_TTL_SECONDS = env.int("DATA_CACHE_TTL_SECONDS", default=300)

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}
