"""Settings shared by every environment.

Every environment variable the project reads is read here, once. The leaf modules
(local, test, production) import this module and change only what differs.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from orderstream.log_format import log_format_from, logger_levels_from, logging_dict


def env(name: str, default: str) -> str:
    """Return the environment variable `name`, or `default` when unset or empty."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...]) -> str:
    """The environment variable `name` (default: the first of `choices`), one of `choices`."""
    value = env(name, choices[0]).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def redis_url(addr: str) -> str:
    """Accept REDIS_ADDR as `host:port` (the Go services' form) or as a redis:// URL."""
    if "://" in addr:
        return addr
    return f"redis://{addr}/0"


BASE_DIR = Path(__file__).resolve().parent.parent.parent

# ------------------------------------------------------------------------------
# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
# Empty here; production.py refuses to start without one, local.py and test.py set a dev key.
SECRET_KEY = env("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "orders_api.exceptions.csrf_failure"  # the API's JSON error shape
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
API_PORT = int(env("API_PORT", "8080"))

# ------------------------------------------------------------------------------
# APPS, MIDDLEWARE, URLS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: /docs works offline
    "orders_api",
    "orders_worker",
]

MIDDLEWARE = [
    # First: it times and counts everything the server does for a request (GET /metrics).
    "orderstream.http_metrics.RequestMetricsMiddleware",
    "orders_api.charset.RefuseNonTextCharsetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "orderstream.admin_messages.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "orderstream.urls"
WSGI_APPLICATION = "orderstream.wsgi.application"
# `manage.py test` runs the pytest suite (see testkit/test_runner.py).
TEST_RUNNER = "testkit.test_runner.PytestTestRunner"

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

# ------------------------------------------------------------------------------
# STATIC FILES (served by WhiteNoise behind the API server)
# ------------------------------------------------------------------------------
STATIC_URL = "/static/"
# `collectstatic` writes here; the image collects into /app/staticfiles at build time.
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))

# ------------------------------------------------------------------------------
# DATABASES: `default` is the API's database, `worker` the worker's.
# ------------------------------------------------------------------------------
API_POSTGRES_DSN = env(
    "API_POSTGRES_DSN",
    "postgres://postgres:upvel123@localhost:5433/orderstream_api?sslmode=disable",
)
WORKER_POSTGRES_DSN = env(
    "WORKER_POSTGRES_DSN",
    "postgres://postgres:upvel123@localhost:5434/orderstream_worker?sslmode=disable",
)
DB_CONN_MAX_AGE = int(env("DB_CONN_MAX_AGE", "60"))
# A SELECT 1 before the first query of each request on a reused connection: off, as in
# Django, because it doubles the round trips of a create; a connection broken by a
# database restart fails one request and is then replaced.
DB_CONN_HEALTH_CHECKS = env_bool("DB_CONN_HEALTH_CHECKS", False)
DATABASES = {
    "default": dj_database_url.parse(
        API_POSTGRES_DSN, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=DB_CONN_HEALTH_CHECKS
    ),
    "worker": dj_database_url.parse(
        WORKER_POSTGRES_DSN, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=DB_CONN_HEALTH_CHECKS
    ),
}
DATABASE_ROUTERS = ["orderstream.routers.WorkerRouter", "orderstream.routers.ApiRouter"]

# ------------------------------------------------------------------------------
# CACHES (Redis; the worker's results use the raw client of this alias)
# ------------------------------------------------------------------------------
REDIS_ADDR = env("REDIS_ADDR", "localhost:6379")
REDIS_URL = redis_url(REDIS_ADDR)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": float(env("REDIS_CONNECT_TIMEOUT", "2")),
            "SOCKET_TIMEOUT": float(env("REDIS_SOCKET_TIMEOUT", "2")),
        },
    }
}
# Lifetime of `order_result:<order_id>` in seconds (0 = keep forever).
ORDER_RESULT_TTL = int(env("ORDER_RESULT_TTL", str(7 * 24 * 3600)))

# ------------------------------------------------------------------------------
# KAFKA
# ------------------------------------------------------------------------------
KAFKA_BROKERS = env_list("KAFKA_BROKERS", "localhost:29092")
# The Kafka client driver (orderstream/kafka/clients.py): kafka-python, or confluent-kafka.
KAFKA_CLIENTS = ("kafka-python", "confluent")
KAFKA_CLIENT = env_choice("KAFKA_CLIENT", KAFKA_CLIENTS)
ORDERS_EVENTS_TOPIC = env("ORDERS_EVENTS_TOPIC", "orders.events")
ORDERS_ACK_TOPIC = env("ORDERS_ACK_TOPIC", "orders.ack")
ORDERS_DLQ_TOPIC = env("ORDERS_DLQ_TOPIC", "orders.events.dlq")
ORDERS_EVENTS_PARTITIONS = int(env("ORDERS_EVENTS_PARTITIONS", "6"))
WORKER_GROUP = env("WORKER_GROUP", "order-workers")
# Longest time the broker holds a consumer's fetch when there is nothing new. Apache Kafka
# answers as soon as data arrives; the embedded Tansu broker waits the whole time, so the
# local stack sets a few milliseconds (each hop of the API → worker → API trip costs it).
KAFKA_FETCH_MAX_WAIT_MS = int(env("KAFKA_FETCH_MAX_WAIT_MS", "500"))
# Consumer group liveness. Kept small for the embedded broker, whose group join
# waits in proportion to max_poll_interval_ms; raise it for slow batches in production.
KAFKA_MAX_POLL_INTERVAL_MS = int(env("KAFKA_MAX_POLL_INTERVAL_MS", "30000"))
KAFKA_SESSION_TIMEOUT_MS = int(env("KAFKA_SESSION_TIMEOUT_MS", "10000"))
KAFKA_HEARTBEAT_INTERVAL_MS = int(env("KAFKA_HEARTBEAT_INTERVAL_MS", "1000"))
# Batch size of one worker poll.
WORKER_BATCH_SIZE = int(env("WORKER_BATCH_SIZE", "500"))
# Seconds between the worker's throughput/lag log lines.
WORKER_STATS_INTERVAL = float(env("WORKER_STATS_INTERVAL", "10"))
# How long the worker remembers handled event_ids (redelivery answered as the first time).
WORKER_EVENT_RETENTION_SECONDS = int(env("WORKER_EVENT_RETENTION_SECONDS", str(7 * 24 * 3600)))
# How long the worker keeps dead letters in its database, from when they failed (0 = keep
# them); the dead-letter topic keeps its records by its own retention.
DEAD_LETTER_RETENTION_SECONDS = int(env("DEAD_LETTER_RETENTION_SECONDS", str(30 * 24 * 3600)))
# ms the worker's ACK producer waits to fill a request (the batch is flushed at its end).
WORKER_ACK_LINGER_MS = int(env("WORKER_ACK_LINGER_MS", "20"))
# ms between two polls of a worker that saw no event for 2 s (0 = poll without pause): for
# a broker that holds empty fetches instead of answering them when data comes.
WORKER_IDLE_POLL_MS = int(env("WORKER_IDLE_POLL_MS", "0"))
# File the worker touches (at most once a second) on every turn of its loop, retry waits
# included; `python -m orderstream.heartbeat` checks its age. Empty = no heartbeat.
WORKER_HEARTBEAT_FILE = env("WORKER_HEARTBEAT_FILE", "")
# A worker that has held no partitions for this many seconds (longer than a rebalance
# takes) logs a WARNING at every stats interval; past WORKER_UNASSIGNED_MAX_SECONDS it stops
# touching its heartbeat, so its liveness check fails (0 = never: more workers than
# partitions leave some without any by design).
WORKER_UNASSIGNED_WARN_SECONDS = float(env("WORKER_UNASSIGNED_WARN_SECONDS", "60"))
WORKER_UNASSIGNED_MAX_SECONDS = float(env("WORKER_UNASSIGNED_MAX_SECONDS", "300"))

# ------------------------------------------------------------------------------
# API BEHAVIOUR
# ------------------------------------------------------------------------------
# Threads per API worker process for everything but GET and HEAD (orderstream/rsgi_lanes.py).
API_WRITE_THREADS = int(env("API_WRITE_THREADS", "16"))
# How long POST /orders waits for the worker's ACK before answering 202.
ORDER_ACK_WAIT_TIMEOUT = float(env("ORDER_ACK_WAIT_TIMEOUT", "10"))
# Waits at most this many at a time per API process; more POSTs answer 202 at once
# (orders_api/ack_wait/gate.py). Default: half of API_WRITE_THREADS, so the other half
# always serves the writes that do not wait (reads have a lane of their own).
ORDER_ACK_MAX_WAITERS = int(env("ORDER_ACK_MAX_WAITERS", str(max(API_WRITE_THREADS // 2, 1))))
# No POST waits while the outbox's oldest unpublished row is older than this many seconds
# (the relay or the broker is stuck): 202 at once.
ORDER_ACK_WAIT_MAX_OUTBOX_AGE = float(env("ORDER_ACK_WAIT_MAX_OUTBOX_AGE", "2"))
# ms between two reads of orders.ack while no request waits for an ACK (0 = read without
# pause); a request that starts waiting wakes the reader at once.
ACK_LISTENER_IDLE_POLL_MS = int(env("ACK_LISTENER_IDLE_POLL_MS", "100"))
# The ACK recorder (a thread of `manage.py run_relay`): its consumer group on
# ORDERS_ACK_TOPIC, ACKs per poll, and ms between two polls once it saw no ACK for 2 s
# (0 = poll without pause; as WORKER_IDLE_POLL_MS, for a broker that holds empty fetches).
# It records what the worker did with each order (GET's `processing`).
ACK_RECORDER_GROUP = env("ACK_RECORDER_GROUP", "order-ack-recorders")
ACK_RECORDER_BATCH_SIZE = int(env("ACK_RECORDER_BATCH_SIZE", "500"))
ACK_RECORDER_IDLE_POLL_MS = int(env("ACK_RECORDER_IDLE_POLL_MS", "0"))
# Largest accepted request body in bytes (larger bodies get 413).
API_MAX_BODY_BYTES = int(env("API_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# Published outbox rows older than this many seconds are purged by the relay.
OUTBOX_RETENTION_SECONDS = int(env("OUTBOX_RETENTION_SECONDS", str(24 * 3600)))
# Parked outbox rows (refused for good) are purged by the relay this many seconds after
# they were parked, unless an operator put them back (0 = keep them).
OUTBOX_PARKED_RETENTION_SECONDS = int(env("OUTBOX_PARKED_RETENTION_SECONDS", str(30 * 24 * 3600)))
# Longest wait of the relay for the broker: a producer's metadata and a batch's confirms.
OUTBOX_PUBLISH_TIMEOUT = float(env("OUTBOX_PUBLISH_TIMEOUT", "2"))
# The relay (`manage.py run_relay`) is woken by every committed outbox row and passes at
# least every INTERVAL seconds, backing off up to MAX_BACKOFF on failures.
OUTBOX_RELAY_INTERVAL = float(env("OUTBOX_RELAY_INTERVAL", "1"))
OUTBOX_RELAY_MAX_BACKOFF = float(env("OUTBOX_RELAY_MAX_BACKOFF", "30"))
OUTBOX_RELAY_BATCH = int(env("OUTBOX_RELAY_BATCH", "500"))
# Event bytes one relay pass holds at most (one event always): a pass of large events
# publishes fewer rows, and the next pass goes on.
OUTBOX_RELAY_BATCH_BYTES = int(env("OUTBOX_RELAY_BATCH_BYTES", str(16 * 1024 * 1024)))
# File the relay touches (at most once a second) on every turn of its loop, backoff waits
# included; `python -m orderstream.heartbeat` checks its age. Empty = no heartbeat.
RELAY_HEARTBEAT_FILE = env("RELAY_HEARTBEAT_FILE", "")
OUTBOX_PURGE_INTERVAL = float(env("OUTBOX_PURGE_INTERVAL", "300"))
# Seconds after which PostgreSQL ends, on the relay process's sessions, a transaction left
# idle (a relay lost in the middle of a pass: its rows are released), a statement, and a
# wait for a lock (orders_api/relay/sessions.py; 0 = no limit). The first must stay well
# above a pass's wait for the broker (OUTBOX_PUBLISH_TIMEOUT).
RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT = float(env("RELAY_DB_IDLE_IN_TRANSACTION_TIMEOUT", "30"))
RELAY_DB_STATEMENT_TIMEOUT = float(env("RELAY_DB_STATEMENT_TIMEOUT", "30"))
RELAY_DB_LOCK_TIMEOUT = float(env("RELAY_DB_LOCK_TIMEOUT", "10"))
# Under load (items coming at BATCH_LINGER_MIN_RATE per second or faster) the relay and
# the worker wait up to BATCH_LINGER_MS before a batch, for about BATCH_LINGER_TARGET items
# (orderstream/batch_pacing.py); 0 = never wait. Below that rate they never wait.
BATCH_LINGER_MS = float(env("BATCH_LINGER_MS", "200"))
BATCH_LINGER_TARGET = int(env("BATCH_LINGER_TARGET", "40"))
BATCH_LINGER_MIN_RATE = float(env("BATCH_LINGER_MIN_RATE", "100"))
# How long an Idempotency-Key is remembered (per user).
IDEMPOTENCY_KEY_TTL_SECONDS = int(env("IDEMPOTENCY_KEY_TTL_SECONDS", str(24 * 3600)))
# Default page size of GET /orders (?page_size= up to 500).
API_PAGE_SIZE = int(env("API_PAGE_SIZE", "50"))
# Payload bytes a page of GET /orders holds at most (one order always): a page of large
# orders is shorter, and its `next` link goes on at the first order left out.
API_PAGE_MAX_BYTES = int(env("API_PAGE_MAX_BYTES", str(4 * 1024 * 1024)))
# GET /orders/{id} of JSON clients answered without DRF and most middleware, byte for byte
# as through them (orders_api/fast_reads.py); 0 sends every read through DRF.
API_FAST_READS = env_bool("API_FAST_READS", True)
API_FAST_PATH = "orders_api.fast_reads.FastReads"  # what the WSGI handler asks first
# Each API worker process's ACK listener (its start() and shutdown(); orderstream/rsgi.py).
API_PROCESS_LISTENER = "orders_api.ack_wait.process_listener"
# Comma-separated bearer tokens; when set, the API needs `Authorization: Bearer <token>`
# (or a staff login). Empty = open, as the original service (production warns at start).
API_TOKENS = env_list("API_TOKENS", "")

# ------------------------------------------------------------------------------
# METRICS (Prometheus): the API on GET /metrics; the relay and the worker each on a port
# of their own (0 = off), bound to METRICS_ADDR (loopback unless set otherwise).
# ------------------------------------------------------------------------------
METRICS_ADDR = env("METRICS_ADDR", "127.0.0.1")
WORKER_METRICS_PORT = int(env("WORKER_METRICS_PORT", "9101"))
RELAY_METRICS_PORT = int(env("RELAY_METRICS_PORT", "9102"))

# ------------------------------------------------------------------------------
# AUTH: the API is open (as the original service); /admin needs a staff login.
# ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ------------------------------------------------------------------------------
# DJANGO REST FRAMEWORK / OPENAPI
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Bearer tokens (API_TOKENS) or a staff login; open while API_TOKENS is empty.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orders_api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["orders_api.authentication.ApiAccess"],
    "DEFAULT_RENDERER_CLASSES": [
        # DRF's JSONRenderer, but Decimals keep their digits (amounts are exact, contract.md).
        "orders_api.renderers.ExactJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["orders_api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "orders_api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OrderStream API",
    "DESCRIPTION": "Orders are stored, published to Kafka and processed by the worker.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# ------------------------------------------------------------------------------
# LOGGING: one dict, everything to stdout, as text or one JSON object per line
# (orderstream/log_format.py; the API's granian follows the same LOG_FORMAT).
# ------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = log_format_from(env("LOG_FORMAT", "text"))
LOGGING_CONFIG = "orderstream.log_format.logging_configure"
LOGGING = logging_dict(
    LOG_FORMAT,
    LOG_LEVEL,
    {"kafka": "WARNING", "django.db.backends": "INFO", **logger_levels_from(env("LOG_LEVELS", ""))},
)
