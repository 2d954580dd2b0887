"""Settings shared by every mode; everything that varies comes from the environment."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from config.queues import celery_queues
from config.settings.env import env_bool, env_float, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("RECO_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-change-me-" + "x" * 24)
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files: /api/docs/ works offline
    "django_celery_beat",
    "catalog",
    "users",
    "features",
    "tasks",
    "recommendations",
    "ranking",
    "events",
    "experiments",
    "staff",
    "axes",  # login throttling (below)
]

MIDDLEWARE = [
    "config.observability.middleware.RequestObservabilityMiddleware",  # request id and latency, of every answer
    "django.middleware.security.SecurityMiddleware",
    "config.deadlines.DeadlineMiddleware",
    "config.db.middleware.ReplicaReadMiddleware",  # which requests' reads may go to a replica
    "config.api_errors.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database: DATABASE_URL, else an embedded SQLite file under var/ ---------------------------
# Which kind of process this is: config/wsgi.py and asgi.py say "web" (request timeouts), others "".
RECO_PROCESS = env_str("RECO_PROCESS", "")
# How long one wait for PostgreSQL may last in a web request before it gives up with a 503 (config/db):
# the request path's queries take milliseconds; staff and admin pages get longer.
RECO_API_DB_TIMEOUT_SECONDS = env_float("RECO_API_DB_TIMEOUT_SECONDS", 0.8)
RECO_PAGE_DB_TIMEOUT_SECONDS = env_float("RECO_PAGE_DB_TIMEOUT_SECONDS", 15.0)
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 2)  # seconds; libpq's minimum is 2
# Server-side limit per statement for web processes (jobs run long aggregations: none by default).
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15_000 if RECO_PROCESS == "web" else 0)
DATABASE_URL = env_str("DATABASE_URL")
# Read replicas (config/db/replicas.py): PostgreSQL URLs, comma-separated, of streaming replicas of DATABASE_URL.
# The request path's and staff pages' reads go to them; writes, transactions, jobs and the admin stay on the
# primary. After a profile's own writes its reads stay on the primary for DATABASE_PIN_SECONDS (pins in the
# cache, so every web host honours them). A replica that is down, or replays more than
# DATABASE_REPLICA_MAX_LAG_SECONDS (capped by the pin) behind, is skipped; a background check per process
# measures that every DATABASE_REPLICA_CHECK_SECONDS. An API read waits at most DATABASE_REPLICA_TIMEOUT_SECONDS
# for a replica before it runs on the primary. None set: everything on the primary.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
DATABASE_PIN_SECONDS = env_float("DATABASE_PIN_SECONDS", 5.0)
DATABASE_REPLICA_MAX_LAG_SECONDS = env_float("DATABASE_REPLICA_MAX_LAG_SECONDS", 2.0)
DATABASE_REPLICA_CHECK_SECONDS = env_float("DATABASE_REPLICA_CHECK_SECONDS", 1.0)
DATABASE_REPLICA_TIMEOUT_SECONDS = env_float("DATABASE_REPLICA_TIMEOUT_SECONDS", 0.25)
DATABASE_REPLICA_ALIASES: list[str] = []
DATABASE_ROUTERS: list[str] = []


def _postgres_options(database: dict) -> dict:
    """Timeouts on every connection of config.db (the primary's and each replica's)."""
    if database["ENGINE"] == "config.db":
        options = database.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
        if DATABASE_STATEMENT_TIMEOUT_MS:
            # and the server stops a query whose client went away (the deadline closed its connection)
            options.setdefault(
                "options",
                f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} -c client_connection_check_interval=1000",
            )
    return database


if DATABASE_URL:
    DATABASES = {"default": _postgres_options(parse_database_url(DATABASE_URL))}
    for _number, _url in enumerate(DATABASE_REPLICA_URLS, 1):
        _replica = _postgres_options(parse_database_url(_url))
        if _replica["ENGINE"] != "config.db" or DATABASES["default"]["ENGINE"] != "config.db":
            raise ImproperlyConfigured("DATABASE_REPLICA_URLS are PostgreSQL replicas of a PostgreSQL DATABASE_URL.")
        DATABASES[f"replica{_number}"] = _replica
        DATABASE_REPLICA_ALIASES.append(f"replica{_number}")
    if DATABASE_REPLICA_ALIASES:
        DATABASE_ROUTERS = ["config.db.router.ReplicaRouter"]
elif DATABASE_REPLICA_URLS:
    raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs DATABASE_URL (the primary) as well.")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "reco.sqlite3",
            "OPTIONS": {"timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches: REDIS_CLUSTER_URLS (a Redis Cluster), else REDIS_URL (one Redis), else local memory ------------
REDIS_URL = env_str("REDIS_URL")
# Startup nodes of a Redis Cluster, comma-separated `redis://host:port` (config/redis_cluster.py); when set it is
# the cache, the online feature store, the rate limits and the locks (the Celery broker stays CELERY_BROKER_URL).
REDIS_CLUSTER_URLS = env_list("REDIS_CLUSTER_URLS", [])
# After a node fails, the cluster's slot map is re-read at most this often (a promoted replica serves then).
REDIS_CLUSTER_REFRESH_SECONDS = env_float("REDIS_CLUSTER_REFRESH_SECONDS", 0.5)
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "reco")
# Every Redis call of the process goes through a circuit breaker (config/redis_connection.py): after this many
# failures in a row Redis is skipped (answers degraded) until a background ping, every PROBE seconds, succeeds.
# A web request's Redis calls take a millisecond: one that has not answered in 50 ms opens the breaker at once,
# so a hung Redis holds each web worker up for 50 ms, once. Jobs write big pipelines: they wait longer.
REDIS_BREAKER_FAILURES = env_int("REDIS_BREAKER_FAILURES", 1)
REDIS_BREAKER_PROBE_SECONDS = env_float("REDIS_BREAKER_PROBE_SECONDS", 0.5)
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.05 if RECO_PROCESS == "web" else 0.5)
if REDIS_CLUSTER_URLS:
    CACHES = {
        "default": {
            "BACKEND": "config.redis_cluster.RedisClusterCache",
            "LOCATION": REDIS_CLUSTER_URLS,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_timeout": REDIS_SOCKET_TIMEOUT, "refresh_seconds": REDIS_CLUSTER_REFRESH_SECONDS},
        }
    }
elif REDIS_URL:
    from config.redis_connection import BreakerConnection

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                # One retry, for a dropped connection only (a pooled socket Redis closed); a timeout is not
                # retried: it opens the breaker, and later calls fail at once until Redis answers a ping.
                "CONNECTION_POOL_KWARGS": {
                    "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                    "connection_class": BreakerConnection,
                },
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "reco"}}

# --- Celery: CELERY_BROKER_URL, else tasks run eagerly in-process --------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "reco")
# One queue per job domain (config/queues.py routes each task by its module), so that a worker pool per queue
# group keeps a two-hour training from delaying the feature refresh. Naming them all alike gives one queue.
RECO_QUEUES = {
    group: env_str(f"CELERY_{group.upper()}_QUEUE", group)
    for group in ("features", "training", "experiments", "housekeeping")
}
# Every queue is bound to this topic exchange by its own name (topic, not direct: RabbitMQ's native delayed
# delivery, which countdown retries need on quorum queues, cannot route through a direct exchange).
CELERY_TASK_DEFAULT_EXCHANGE = env_str("CELERY_EXCHANGE", "reco.jobs")
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
CELERY_TASK_DEFAULT_ROUTING_KEY = CELERY_TASK_DEFAULT_QUEUE
# On RabbitMQ the queues are durable quorum queues (replicated across a cluster's nodes; Redis ignores the
# arguments). A message redelivered this many times (a task that keeps killing its worker) is dropped; its
# JobRun shows LOST. Quorum queues have no global QoS: the worker detects them and prefetches per consumer.
RECO_QUORUM_DELIVERY_LIMIT = env_int("CELERY_QUORUM_DELIVERY_LIMIT", 10)
CELERY_WORKER_DETECT_QUORUM_QUEUES = True
CELERY_TASK_QUEUES = celery_queues(
    [CELERY_TASK_DEFAULT_QUEUE, *RECO_QUEUES.values()],
    exchange=CELERY_TASK_DEFAULT_EXCHANGE,
    delivery_limit=RECO_QUORUM_DELIVERY_LIMIT,
)
CELERY_TASK_ROUTES = ("config.queues.route_task",)
CELERY_IMPORTS = [
    "tasks.features",
    "tasks.maintenance",
    "tasks.training",
    "tasks.experiments",
]  # the job modules of tasks/ (autodiscovery only finds `tasks.py`)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING: JSON lines naming their task
CELERY_RESULT_EXPIRES = 3600
# Redis broker: a message a worker has not acked within visibility_timeout goes to another worker. That
# is how a killed worker's late-acked task comes back, so it must exceed the longest hard time limit
# (train_model: 2 h 5 min), or a long run is delivered twice. RabbitMQ needs none (it redelivers when
# the connection drops), but its consumer_timeout (rabbitmq.conf, default 30 min) must exceed that limit
# too, or it closes the channel of a long late-acked task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600)}
# Job locks (tasks/locks.py) lapse this long after their holder dies; a live holder renews them.
RECO_JOB_LOCK_SECONDS = env_int("RECO_JOB_LOCK_SECONDS", 60)
# Monthly partitions of viewing history and API events (PostgreSQL, config/partitions.py): the daily job keeps
# this many months ready ahead and detaches and drops whole months older than the retention window. Deleting
# history is opt-in (0, the default, keeps all): a deployment sets its window (e.g. 24) on purpose.
RECO_PARTITION_MONTHS_AHEAD = env_int("RECO_PARTITION_MONTHS_AHEAD", 3)
RECO_PARTITION_RETENTION_MONTHS = env_int("RECO_PARTITION_RETENTION_MONTHS", 0)

# --- Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is refused (429, staff.lockout) until AXES_COOLOFF_MINUTES have passed without a try. Attempts live
# in the database, one row per (username, address) that failed within the cool-off, expired by axes itself.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours, as axes reads a number
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "staff.lockout.login_locked_response"
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login: storage stays bounded (last_login is kept)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",  # one error shape: {code, message, details}
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Reco API",
    "DESCRIPTION": "Recommendations for a video-streaming platform.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",  # never a CDN: the docs work without internet
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no validator badge from the internet
}

# Where synthetic ground truth, artifacts and snapshots live by default.
RECO_DATA_DIR = Path(env_str("RECO_DATA_DIR", str(VAR_DIR / "data")))

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# One JSON object a line (time, level, logger, message, process, request_id or task; secrets masked:
# config/observability/logs.py); LOG_FORMAT=plain for the one-line text format.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured("LOG_FORMAT is json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.observability.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.observability.logs.JsonFormatter"},
    },
    "filters": {"skip_open_circuit": {"()": "config.breakers.SkipOpenCircuit"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["skip_open_circuit"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Metrics (config/observability, docs/metrics.md): GET /metrics in Prometheus format. With a token set, scrapers
# send `Authorization: Bearer <token>`; without one only loopback connections and staff users may read it.
RECO_METRICS = env_bool("RECO_METRICS", default=True)  # 0: record nothing (measuring what metrics cost)
RECO_METRICS_TOKEN = env_str("RECO_METRICS_TOKEN", "")
# Candidates per source and feature age are observed in one answer in this many (1: every one).
RECO_METRICS_INPUT_SAMPLE = env_int("RECO_METRICS_INPUT_SAMPLE", 4)

# --- Model registry (recommendations/) -----------------------------------------------------------
RECO_ARTIFACT_DIR = Path(env_str("RECO_ARTIFACT_DIR", str(RECO_DATA_DIR / "artifacts")))
# The store every host reads models from: empty keeps RECO_ARTIFACT_DIR (local disk or a shared NFS mount); an
# fsspec URL (s3://bucket/prefix; needs s3fs) puts them there (recommendations/artifact_store.py). The endpoint
# names a non-AWS S3-compatible server (credentials: the usual AWS_* variables); every call has this timeout.
RECO_ARTIFACT_URL = env_str("RECO_ARTIFACT_URL", "")
RECO_ARTIFACT_ENDPOINT_URL = env_str("RECO_ARTIFACT_ENDPOINT_URL", "")
RECO_ARTIFACT_STORE_TIMEOUT_SECONDS = env_float("RECO_ARTIFACT_STORE_TIMEOUT_SECONDS", 10.0)
RECO_ARTIFACT_STORE_ATTEMPTS = env_int("RECO_ARTIFACT_STORE_ATTEMPTS", 2)  # tries per call (1: no retry)
RECO_REGISTRY_CHECK_SECONDS = float(env_int("RECO_REGISTRY_CHECK_SECONDS", 5))
# Serving loads each artifact from this host's own verified read-only copy (local disk, one directory per
# checksum: recommendations/artifact_cache.py); RECO_ARTIFACT_MMAP=0 reads the arrays into memory instead.
RECO_SERVING_CACHE_DIR = Path(env_str("RECO_SERVING_CACHE_DIR", str(VAR_DIR / "serving-cache")))
RECO_ARTIFACT_MMAP = env_bool("RECO_ARTIFACT_MMAP", default=True)
# A failed load is retried after 5 s, then 10, 20 ... up to 5 minutes.
RECO_ARTIFACT_RETRY_SECONDS = float(env_int("RECO_ARTIFACT_RETRY_SECONDS", 5))
RECO_ARTIFACT_RETRY_MAX_SECONDS = float(env_int("RECO_ARTIFACT_RETRY_MAX_SECONDS", 300))
# Web processes stat every served file this often (a change is hashed, logged, shown, and a changed private
# copy replaced) and hash them all, paced, this often; they publish their status to the cache this often.
RECO_ARTIFACT_VERIFY_SECONDS = float(env_int("RECO_ARTIFACT_VERIFY_SECONDS", 15))
RECO_ARTIFACT_REHASH_SECONDS = float(env_int("RECO_ARTIFACT_REHASH_SECONDS", 3600))
RECO_PROCESS_STATUS_SECONDS = float(env_int("RECO_PROCESS_STATUS_SECONDS", 30))
# How often a process looks for edited business rules (ranking/rules_cache.py); edits serve within ~2 s.
RECO_RULES_CHECK_SECONDS = float(env_int("RECO_RULES_CHECK_SECONDS", 2))
# How often a process reloads running experiments and the bandit state (experiments/); default 5.
RECO_EXPERIMENTS_CHECK_SECONDS = float(env_int("RECO_EXPERIMENTS_CHECK_SECONDS", 5))
# How often a process looks for catalog edits (a version in the cache), and, less often, counts the titles
# to notice bulk imports (~8 ms at 100K titles: kept off most requests).
RECO_CATALOG_CHECK_SECONDS = float(env_int("RECO_CATALOG_CHECK_SECONDS", 5))
RECO_CATALOG_TABLE_CHECK_SECONDS = float(env_int("RECO_CATALOG_TABLE_CHECK_SECONDS", 60))
# Whole /api/recs responses are cached this long (stale at once on new viewings or rule changes); 0: off.
RECO_RESPONSE_CACHE_SECONDS = env_int("RECO_RESPONSE_CACHE_SECONDS", 600)

# --- Feature store (features/) -------------------------------------------------------------------
# Online TTLs per entity type; refresh jobs must run more often than these. Embedded (no REDIS_URL, so
# no beat refreshing them) the features stay a week: `demo_setup` refreshes them on every run.
_EMBEDDED_FEATURE_TTL = 7 * 24 * 3600
FEATURE_TTL_SECONDS = {
    "user": env_int("FEATURE_TTL_USER_SECONDS", 3600 if REDIS_URL or REDIS_CLUSTER_URLS else _EMBEDDED_FEATURE_TTL),
    "content": env_int(
        "FEATURE_TTL_CONTENT_SECONDS", 300 if REDIS_URL or REDIS_CLUSTER_URLS else _EMBEDDED_FEATURE_TTL
    ),
}
# How often a process looks for a new title-feature matrix (features/title_features.py; the content refresh
# announces one every 5 minutes); between checks the request path reads title features from process memory.
RECO_TITLE_FEATURES_CHECK_SECONDS = env_float("RECO_TITLE_FEATURES_CHECK_SECONDS", 2.0)
# Offline Parquet snapshots: a local directory, or any fsspec URL (s3:// needs s3fs installed).
FEATURE_OFFLINE_DIR = env_str("FEATURE_OFFLINE_DIR", str(RECO_DATA_DIR / "features"))
