"""Settings for the refresh service, read from the environment with embedded defaults.

Nothing here needs to be set to run locally: SQLite, an in-process cache, django-q2's ORM
broker and the mock market-data provider are the defaults. Production sets DATABASE_URL,
REDIS_URL and TWELVEDATA_API_KEY.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# DEBUG shows source and local variables on error pages, so it is on only when asked for.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - public on purpose, refused unless DEBUG
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or (DEVELOPMENT_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (SECRET_KEY == DEVELOPMENT_SECRET_KEY and not DEBUG):
    # A public key lets anyone sign sessions and password-reset links: refuse to start on it.
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a long random value (or DJANGO_DEBUG=true for development).")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS ----------------------------------------------------------------------------
# DJANGO_HTTPS=true for a site served over TLS: redirect plain HTTP, secure cookies, HSTS.
# DJANGO_BEHIND_TLS_PROXY=true when a proxy terminates TLS and sets X-Forwarded-Proto (only
# then: a client could set that header itself).
HTTPS = env.bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS and env.bool("DJANGO_HSTS_SUBDOMAINS", default=True)
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_ENGINE = "refresh_project.sessions"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "core",
    "market_data",
    "portfolios",
    "refresh",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself, with DEBUG off too (after collectstatic).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "refresh_project.middleware.RequestLogMiddleware",
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
# front (no lock-upgrade deadlocks) and the timeout (seconds) makes a writer wait instead of
# failing. synchronous=NORMAL is durable in WAL mode except for the last commits on power loss.
SQLITE_PATH = env("SQLITE_PATH", default=str(BASE_DIR / "var" / "db.sqlite3"))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
USING_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if USING_SQLITE:
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Reuse connections between requests and tasks instead of reconnecting each time (django-q's
# ORM broker would otherwise reconnect for every task it queues).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
# "default" memoises small figures (per process without Redis); "data" holds cached read-API
# figures; "ratelimit" holds the rate-limit counters, which every process must share: Redis
# with REDIS_URL, otherwise a table in the database (core/counter_cache.py). Each has its own
# keys, so clearing one never resets another.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:

    def _redis_cache(prefix):
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }

    CACHES = {
        "default": _redis_cache("refresh"),
        "data": _redis_cache("refresh-data"),
        "ratelimit": _redis_cache("refresh-ratelimit"),
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
        # Files, not process memory: the worker that refreshes must drop what the web process serves.
        "data": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env("DATA_CACHE_DIR", default=str(BASE_DIR / "var" / "cache" / "data")),
            "OPTIONS": {"MAX_ENTRIES": 50000},
        },
        "ratelimit": {"BACKEND": "core.counter_cache.CounterCache"},
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
# true only where an emergency cluster runs (Q_CLUSTER_NAME=emergency qcluster): emergency runs
# then also get a pickup in that reserved lane. Without it they go first on the normal workers.
REFRESH_EMERGENCY_LANE = env.bool("REFRESH_EMERGENCY_LANE", default=False)
# An emergency run that could start but has waited this long for a worker makes one less urgent
# running run yield its worker at its next batch (refresh/services/preemption.py): long enough
# that a free worker, had there been one, would have taken it.
REFRESH_EMERGENCY_GRACE_SECONDS = env.float("REFRESH_EMERGENCY_GRACE_SECONDS", default=2.0)
if Q_BROKER == "redis" and REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "refresh.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Ours for JSON: a body nested too deeply is a 400 there, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "refresh.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.errors.json_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
}

# --- API documentation (drf-spectacular) ---------------------------------------------
# OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/, ReDoc at /api/redoc/; the UIs' files
# come from the sidecar package, so the docs load with no outside request.
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "Manual refresh API",
    "DESCRIPTION": "Start refreshes of market data and portfolio analytics on demand, follow and cancel runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would send the schema to an outside service.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # One schema component per domain choice set, named after it.
    "ENUM_NAME_OVERRIDES": {
        "RefreshKindEnum": "refresh.models.RefreshKind",
        "RefreshModeEnum": "refresh.models.RefreshMode",
        "RunStatusEnum": "refresh.models.RunStatus",
        "RunSourceEnum": "refresh.models.RunSource",
        "SymbolOutcomeEnum": "refresh.models.SymbolOutcome",
        "RoleEnum": "core.roles.Role",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.document_common_errors",
    ],
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
# The plan's credits, shared by every worker (0: unlimited). Twelve Data's free plan allows
# 8 a minute and 800 a UTC day; the mock is unlimited unless these are set.
_TWELVEDATA = MARKET_DATA_PROVIDER == "twelvedata"
MARKET_DATA_CREDITS_PER_MINUTE = env.int("MARKET_DATA_CREDITS_PER_MINUTE", default=8 if _TWELVEDATA else 0)
MARKET_DATA_CREDITS_PER_DAY = env.int("MARKET_DATA_CREDITS_PER_DAY", default=800 if _TWELVEDATA else 0)
MARKET_DATA_CREDIT_STORE = env("MARKET_DATA_CREDIT_STORE", default="redis" if REDIS_URL else "database")
MARKET_DATA_CREDIT_WARNING_RATIO = env.float("MARKET_DATA_CREDIT_WARNING_RATIO", default=0.8)
# Provider batches in flight at once per run, all within the credits above (1: one at a time).
MARKET_DATA_CONCURRENCY = env.int("MARKET_DATA_CONCURRENCY", default=4)
# Retries of transient provider failures: exponential backoff with full jitter, bounded.
MARKET_DATA_RETRY_ATTEMPTS = env.int("MARKET_DATA_RETRY_ATTEMPTS", default=4)
MARKET_DATA_RETRY_MAX_SECONDS = env.float("MARKET_DATA_RETRY_MAX_SECONDS", default=60.0)
MARKET_DATA_RETRY_BACKOFF_SECONDS = env.float("MARKET_DATA_RETRY_BACKOFF_SECONDS", default=1.0)
MARKET_DATA_RETRY_BACKOFF_CAP_SECONDS = env.float("MARKET_DATA_RETRY_BACKOFF_CAP_SECONDS", default=20.0)
# Anomalies: what makes a price suspicious, and whether suspicious prices are held back.
MARKET_DATA_MAX_DAILY_MOVE = env.float("MARKET_DATA_MAX_DAILY_MOVE", default=0.25)
MARKET_DATA_STALE_AFTER_SESSIONS = env.int("MARKET_DATA_STALE_AFTER_SESSIONS", default=3)
MARKET_DATA_QUARANTINE_ANOMALIES = env.bool("MARKET_DATA_QUARANTINE_ANOMALIES", default=True)
MARKET_DATA_CALENDAR = env("MARKET_DATA_CALENDAR", default="XNYS")
TWELVEDATA_MAX_OUTPUTSIZE = 5000

# --- Refresh behaviour ----------------------------------------------------------------
# Routine schedules (manage.py install_schedules): local times of day in this zone.
REFRESH_SCHEDULE_TZ = env("REFRESH_SCHEDULE_TZ", default="America/New_York")
REFRESH_NIGHTLY_AT = env("REFRESH_NIGHTLY_AT", default="02:00")  # full refresh of everything
REFRESH_BENCHMARK_AT = env("REFRESH_BENCHMARK_AT", default="18:00")  # benchmark, after the US close
REFRESH_HISTORY_YEARS = env.int("REFRESH_HISTORY_YEARS", default=5)
REFRESH_QUOTE_FRESHNESS_SECONDS = env.int("REFRESH_QUOTE_FRESHNESS_SECONDS", default=900)
REFRESH_RISK_FREE_RATE = env.float("REFRESH_RISK_FREE_RATE", default=0.04)
# Portfolio and benchmark returns alike: "total" (dividends reinvested: history adjusted for
# dividends and splits) or "price" (adjusted for splits only). Changing it needs a full refresh.
REFRESH_RETURN_BASIS = env("REFRESH_RETURN_BASIS", default="total")
# "wait" holds a web thread: at most this long (well under gunicorn's 30 s timeout), at most
# this many at once per requester and per web process; past those the request answers at once.
REFRESH_MAX_WAIT_SECONDS = env.int("REFRESH_MAX_WAIT_SECONDS", default=20)
REFRESH_MAX_CONCURRENT_WAITS = env.int("REFRESH_MAX_CONCURRENT_WAITS", default=2)
REFRESH_MAX_WAITS_PER_PROCESS = env.int("REFRESH_MAX_WAITS_PER_PROCESS", default=4)
# A worker renews its run's lease every third of this from a heartbeat thread; a lapsed lease means
# the worker is lost: the reaper fails the run, and an identical request starts a new one.
REFRESH_LEASE_SECONDS = env.int("REFRESH_LEASE_SECONDS", default=30)
REFRESH_METRICS_CHUNK = env.int("REFRESH_METRICS_CHUNK", default=2000)
# Tasks a run queues at most per calculation so that idle workers, of any machine, calculate its
# portfolio chunks beside it (portfolios/services/chunks.py); 0: the run's worker does them all.
REFRESH_CHUNK_TASKS = env.int("REFRESH_CHUNK_TASKS", default=max(0, Q_CLUSTER["workers"] - 1))
REFRESH_WRITE_BATCH = env.int("REFRESH_WRITE_BATCH", default=2000)
# Used for the estimated completion of a kind that has never run yet.
REFRESH_DEFAULT_DURATION_SECONDS = {"all": 60, "prices": 10, "portfolio": 5, "strategy": 10, "benchmark": 10}
# A run past its kind's limit stops between batches and ends as "timeout".
# Override per kind with e.g. REFRESH_TIME_LIMIT_SECONDS="all=1800;prices=300".
REFRESH_TIME_LIMIT_SECONDS = {
    "all": 1200,
    "prices": 600,
    "portfolio": 120,
    "strategy": 300,
    "benchmark": 300,
    **env.dict("REFRESH_TIME_LIMIT_SECONDS", cast={"value": int}, default={}),
}
DATA_CACHE_TTL_SECONDS = env.int("DATA_CACHE_TTL_SECONDS", default=300)
# After a refresh, rebuild this many of the invalidated entries, most read first.
DATA_CACHE_WARM_LIMIT = env.int("DATA_CACHE_WARM_LIMIT", default=100)
# Reads are counted per entry for that choice over about this long.
DATA_CACHE_READS_TTL_SECONDS = env.int("DATA_CACHE_READS_TTL_SECONDS", default=86400)

# --- Rate limits (interactive requests: API and admin buttons) ------------------------
# Counters and cooldowns (refresh/services/rate_limits.py) in the "ratelimit" cache, shared by every process.
RATELIMIT_USE_CACHE = "ratelimit"
REFRESH_RATE_LIMITS = {
    "admin": env("REFRESH_RATE_LIMIT_ADMIN", default="100/h"),
    "user": env("REFRESH_RATE_LIMIT_USER", default="10/h"),
    "support": env("REFRESH_RATE_LIMIT_SUPPORT", default="30/h"),
    "system": env("REFRESH_RATE_LIMIT_SYSTEM", default="1000/h"),
}
REFRESH_BURST_RATE = env("REFRESH_BURST_RATE", default="5/10s")  # per requester, across every trigger
REFRESH_COOLDOWN_SECONDS = env.int("REFRESH_COOLDOWN_SECONDS", default=60)  # same requester, kind and target

# --- Monitoring, webhooks and notifications -------------------------------------------
# The Prometheus endpoint answers admins and support, or a scraper sending this bearer token.
PROMETHEUS_METRICS_TOKEN = env("PROMETHEUS_METRICS_TOKEN", default="")
PROMETHEUS_METRICS_PUBLIC = env.bool("PROMETHEUS_METRICS_PUBLIC", default=False)
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=6)
NOTIFICATION_RETRY_BASE_SECONDS = env.int("NOTIFICATION_RETRY_BASE_SECONDS", default=30)
NOTIFICATION_CONNECT_TIMEOUT = env.float("NOTIFICATION_CONNECT_TIMEOUT", default=3.0)
NOTIFICATION_READ_TIMEOUT = env.float("NOTIFICATION_READ_TIMEOUT", default=10.0)
# An attempt still `sending`, or a task still owed, this long after it was due counts as lost.
NOTIFICATION_LOST_AFTER_SECONDS = env.int("NOTIFICATION_LOST_AFTER_SECONDS", default=300)
# The email channel: EMAIL_URL such as smtp+tls://user:pass@mail.example.com:587; the console by default.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="refresh@localhost")

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
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# Hashed, compressed copies with far-future caching; collectstatic writes them.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logging ---------------------------------------------------------------------------
# One JSON object per line (LOG_FORMAT=plain for a terminal). Every handler first stamps the
# record with its request id, then redacts keys, tokens and secrets, so no logger can leak them.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "core.log_context.RequestContextFilter"},
        "redact_secrets": {"()": "core.log_redaction.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # refresh.manual and refresh.scheduled carry finished runs, apart; refresh.http the access log.
    # runserver's access log has a handler of its own in Django's defaults: route it through ours,
    # so a ?token= in a logged URL is redacted too.
    "loggers": {
        "urllib3": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
