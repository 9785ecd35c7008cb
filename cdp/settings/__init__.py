"""Settings for every environment, read from the environment (12-factor).

The defaults run on a laptop with nothing installed: SQLite under var/ and Celery's
filesystem broker under var/. Point DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at
Redis or RabbitMQ to scale; `cdp.settings.production` adds the hardening for real
deployments.
"""
import copy
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("CDP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "cdp.apps.CdpAdminConfig",  # the admin, with our AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files, no CDN
    "import_export",
    "cdp.apps.CdpConfig",
    "profiles",
    "consent",
    "segments",
    "campaigns",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "cdp.observability.RequestIdMiddleware",  # before anything that logs
    "django.middleware.security.SecurityMiddleware",
    "cdp.api.middleware.ApiBodySizeLimitMiddleware",  # 413 before anything reads a too-large API body
    "django.contrib.sessions.middleware.SessionMiddleware",
    "cdp.middleware.ChineseFirstLocaleMiddleware",
    "cdp.middleware.RefuseNulInAddressMiddleware",  # %00 in a filter or search: a 400, not a database error
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: sees the view and the status
]

ROOT_URLCONF = "cdp.urls"
WSGI_APPLICATION = "cdp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web app read while the Celery worker writes; IMMEDIATE transactions
    # take the write lock up front instead of failing with "database is locked" later.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A streaming replica for analyses, segment previews and counts (cdp/replica.py); the
# primary answers instead while it is down or more than the allowed seconds behind.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {**env.db("DATABASE_REPLICA_URL"), "CONN_MAX_AGE": DATABASES["default"].get("CONN_MAX_AGE", 0),
                            "CONN_HEALTH_CHECKS": True, "TEST": {"MIRROR": "default"}}  # tests: the primary's test database
DATABASE_ROUTERS = ["cdp.replica.ReplicaRouter"]
CDP_REPLICA_MAX_LAG_SECONDS = env.float("CDP_REPLICA_MAX_LAG_SECONDS", default=30)
CDP_REPLICA_CHECK_SECONDS = env.float("CDP_REPLICA_CHECK_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The events index covers profile_id on PostgreSQL; SQLite just ignores the INCLUDE.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Language and time ----------------------------------------------------------------
# Simplified Chinese unless the staff member picks English in the admin's switch.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True  # stored in UTC
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")  # shown in Shanghai time

# --- Static and media -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Uploaded files (imports) go through the default storage: a folder under MEDIA_ROOT, or an
# S3-compatible bucket (CDP_STORAGE_S3_BUCKET) that several worker machines share.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if env.str("CDP_STORAGE_S3_BUCKET", default=""):
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": env.str("CDP_STORAGE_S3_BUCKET"),
        "endpoint_url": env.str("CDP_STORAGE_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("CDP_STORAGE_S3_REGION", default="") or None,
        "access_key": env.str("CDP_STORAGE_S3_ACCESS_KEY_ID", default="") or None,
        "secret_key": env.str("CDP_STORAGE_S3_SECRET_ACCESS_KEY", default="") or None,
        "location": env.str("CDP_STORAGE_S3_PREFIX", default=""),
        "file_overwrite": False, "default_acl": None, "querystring_auth": False, "addressing_style": "path",
    }}
# The largest body of a partner API import upload: a whole file, or one part of a larger one.
CDP_IMPORT_PART_MAX_BYTES = env.int("CDP_IMPORT_PART_MAX_BYTES", default=64 * 1024 * 1024)

# --- Celery ---------------------------------------------------------------------------
# filesystem:// is kombu's broker that needs no server: messages are files under var/.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The exchange tables go under var/ too: kombu's default is a `control` folder in
    # whatever directory the process was started from.
    _broker_dir = VAR_DIR / "celery-broker"
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
# Four queues (cdp/queues.py): imports, segments (and the nightly analytics), deliveries,
# default. A worker started without -Q consumes only `default`: name them all (make run does).
# CDP_QUEUE_PREFIX keeps installations (or the worker tests) sharing a broker apart.
from cdp.queues import task_routes  # noqa: E402

CDP_QUEUE_PREFIX = env.str("CDP_QUEUE_PREFIX", default="")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default=CDP_QUEUE_PREFIX + "default")
CELERY_TASK_ROUTES = task_routes(CDP_QUEUE_PREFIX)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits: at the soft one the task gets an exception to leave a clear state ("timed
# out") behind; at the hard one the worker process is killed. Short by default, longer for
# the tasks that work through the whole customer base or a whole file.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CDP_TASK_SOFT_TIME_LIMIT", default=5 * 60)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CDP_IMPORT_SOFT_TIME_LIMIT = env.int("CDP_IMPORT_SOFT_TIME_LIMIT", default=6 * 3600)
CDP_SEGMENT_SOFT_TIME_LIMIT = env.int("CDP_SEGMENT_SOFT_TIME_LIMIT", default=30 * 60)
CDP_LONG_TASK_SOFT_TIME_LIMIT = env.int("CDP_LONG_TASK_SOFT_TIME_LIMIT", default=2 * 3600)


def _limits(soft: int) -> dict:
    return {"soft_time_limit": soft, "time_limit": soft + max(60, soft // 20)}


CELERY_TASK_ANNOTATIONS = {
    "profiles.tasks.run_import": _limits(CDP_IMPORT_SOFT_TIME_LIMIT),
    "profiles.tasks.undo_import": _limits(CDP_IMPORT_SOFT_TIME_LIMIT),
    "profiles.import_sources.poll_import_source": _limits(CDP_IMPORT_SOFT_TIME_LIMIT),
    "segments.tasks.recompute_segment": _limits(CDP_SEGMENT_SOFT_TIME_LIMIT),
    **{name: _limits(CDP_LONG_TASK_SOFT_TIME_LIMIT) for name in (
        "segments.tasks.refresh_rule_tags", "profiles.tasks.recompute_all_metrics", "profiles.tasks.recompute_interests",
        "profiles.tasks.recompute_recommendations", "campaigns.tasks.campaign_run", "campaigns.tasks.tick",
        "consent.tasks.check_consent_state")},
    # campaigns.tasks.drain sets its own, below its slot's expiry (campaigns/tasks.py).
}
# A segment's claim on its calculation is taken over after this long (its worker died
# without releasing it: the hard time limit has long passed by then).
CDP_SEGMENT_CLAIM_STALE_SECONDS = _limits(CDP_SEGMENT_SOFT_TIME_LIMIT)["time_limit"] + 60
# A failing segment waits before the scheduler tries it again: 2, 4, 8 … minutes, at most this long.
CDP_SEGMENT_RETRY_BASE_SECONDS = env.int("CDP_SEGMENT_RETRY_BASE_SECONDS", default=120)
CDP_SEGMENT_RETRY_MAX_SECONDS = env.int("CDP_SEGMENT_RETRY_MAX_SECONDS", default=6 * 3600)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Lifecycle stage and recency scores depend on today's date: refresh them nightly.
    "recompute-profile-metrics": {
        "task": "profiles.tasks.recompute_all_metrics",
        "schedule": env.int("CDP_METRICS_EVERY_SECONDS", default=24 * 3600),
    },
    # Interest weights decay with time even when nothing new happens.
    "recompute-interest-scores": {
        "task": "profiles.tasks.recompute_interests",
        "schedule": env.int("CDP_INTERESTS_EVERY_SECONDS", default=24 * 3600),
    },
    # Next-best categories of every customer (recency fades even without new events).
    "recompute-recommendations": {
        "task": "profiles.tasks.recompute_recommendations",
        "schedule": env.int("CDP_RECOMMENDATIONS_EVERY_SECONDS", default=24 * 3600),
    },
    "expire-tags": {"task": "profiles.tasks.expire_tags", "schedule": 3600},
    # Events: next months' partitions made ahead (PostgreSQL), then the retention policies applied.
    "event-partitions": {"task": "profiles.tasks.maintain_event_partitions", "schedule": 6 * 3600},
    "event-retention": {
        "task": "profiles.tasks.apply_event_retention",
        "schedule": env.int("CDP_EVENT_RETENTION_EVERY_SECONDS", default=24 * 3600),
    },
    # Tracking sources: the debugger's log kept short, hourly counts kept 90 days.
    "collect-housekeeping": {"task": "profiles.tasks.collect_housekeeping", "schedule": 3600},
    # Imports whose worker is gone are marked interrupted; unrun uploads expire.
    "import-housekeeping": {"task": "profiles.tasks.import_housekeeping", "schedule": 300},
    # Watched import sources (folders, S3 prefixes): each polled on its own interval, claimed by one worker.
    "import-sources-poll": {"task": "profiles.import_sources.poll_import_sources", "schedule": 60},
    "recompute-due-segments": {"task": "segments.tasks.recompute_due_segments", "schedule": 60},
    # Rule tags with windows ("orders in the last 30 days") change with time as well as data.
    "refresh-rule-tags": {
        "task": "segments.tasks.refresh_rule_tags",
        "schedule": env.int("CDP_RULE_TAGS_EVERY_SECONDS", default=3600),
    },
    # Campaigns: due runs, triggers, stale batches, and drains for destinations with due messages.
    "campaigns-tick": {"task": "campaigns.tasks.tick", "schedule": env.int("CDP_CAMPAIGN_TICK_SECONDS", default=10)},
    # The current consent states must be what the ledger says: drift is logged as an error.
    "check-consent-state": {
        "task": "consent.tasks.check_consent_state",
        "schedule": env.int("CDP_CONSENT_CHECK_EVERY_SECONDS", default=24 * 3600),
    },
}

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # One JSON error shape for the partner API: {code, message, fields}.
    "EXCEPTION_HANDLER": "cdp.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CDP partner API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "DESCRIPTION": "",  # set in cdp.api.schema (translated, with the guide for partners)
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "cdp.api.schema.add_guide"],
    # The schema and the docs are public (they describe, they do not reveal data).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {"ImportKindEnum": "profiles.models.imports.ImportKind"},
}
# --- Partner API ----------------------------------------------------------------------
# Default per-partner rate (a partner row may override it); counted per partner, not per IP.
CDP_API_REQUESTS_PER_MINUTE = env.int("CDP_API_REQUESTS_PER_MINUTE", default=1200)
# Larger request bodies are refused with 413 before they are read (1,000 events fit).
CDP_API_MAX_BODY_BYTES = env.int("CDP_API_MAX_BODY_BYTES", default=2 * 1024 * 1024)
# Calls with an invalid, revoked or expired key allowed per client IP and minute
# (429 beyond); failed calls are audited as one row per IP and minute, not one per call.
CDP_API_FAILED_AUTH_PER_MINUTE = env.int("CDP_API_FAILED_AUTH_PER_MINUTE", default=30)
CDP_API_MAX_BATCH_EVENTS = 1000
CDP_API_PAGE_SIZE = 100
CDP_API_MAX_PAGE_SIZE = 500

# --- The product ----------------------------------------------------------------------
CDP_DEFAULT_PHONE_REGION = env.str("CDP_DEFAULT_PHONE_REGION", default="CN")
CDP_DEFAULT_COUNTRY = env.str("CDP_DEFAULT_COUNTRY", default="CN")
# Above this many rows an unfiltered admin list shows PostgreSQL's estimate instead of
# running COUNT(*) on every page load.
CDP_ADMIN_ESTIMATE_COUNT_ABOVE = env.int("CDP_ADMIN_ESTIMATE_COUNT_ABOVE", default=100_000)
# A filtered admin list counts at most this many matches ("1000+").
CDP_ADMIN_COUNT_CAP = env.int("CDP_ADMIN_COUNT_CAP", default=1000)
# Keys the hashes of erased people's identifiers (profiles.Suppression). Never change it
# once erasures exist: the old hashes would stop matching and erased people could return.
CDP_SUPPRESSION_KEY = env.str("CDP_SUPPRESSION_KEY", default=SECRET_KEY)
# Memory per sort or hash for segment counts, recomputes and analyses (PostgreSQL).
CDP_ANALYSIS_WORK_MEM = env.str("CDP_ANALYSIS_WORK_MEM", default="64MB")
# PostgreSQL: monthly partitions of the events made this many months ahead (docs/partitioning.md).
CDP_EVENT_PARTITIONS_AHEAD = env.int("CDP_EVENT_PARTITIONS_AHEAD", default=3)
# Expired events of a partly expired month are deleted this many per statement and transaction.
CDP_EVENT_RETENTION_BATCH = env.int("CDP_EVENT_RETENTION_BATCH", default=10_000)
# The segment builder's live count gives up after this long and says so.
CDP_PREVIEW_TIMEOUT_MS = env.int("CDP_PREVIEW_TIMEOUT_MS", default=5000)
# Imports: the largest file the admin accepts, and up to which size it runs in the request
# (larger ones go to Celery). The command line (manage.py import_file) has no limit.
CDP_IMPORT_MAX_BYTES = env.int("CDP_IMPORT_MAX_BYTES", default=500 * 1024 * 1024)
CDP_IMPORT_INLINE_BYTES = env.int("CDP_IMPORT_INLINE_BYTES", default=2 * 1024 * 1024)
# A running import touches its heartbeat after every batch; silent this long, it is interrupted.
CDP_IMPORT_HEARTBEAT_TIMEOUT = env.int("CDP_IMPORT_HEARTBEAT_TIMEOUT", default=15 * 60)
# Uploads of imports left unrun (never run, or interrupted) are deleted after this many days.
CDP_IMPORT_UPLOAD_MAX_AGE_DAYS = env.int("CDP_IMPORT_UPLOAD_MAX_AGE_DAYS", default=7)
# Recommendations (next-best category): which events count and how much, how far back,
# how fast they fade, and how long a bought category is not offered again.
CDP_RECOMMENDATION_EVENT_WEIGHTS = {"product_view": 1, "add_to_cart": 2, "order": 3}
CDP_RECOMMENDATION_WINDOW_DAYS = env.int("CDP_RECOMMENDATION_WINDOW_DAYS", default=180)
CDP_RECOMMENDATION_HALF_LIFE_DAYS = env.int("CDP_RECOMMENDATION_HALF_LIFE_DAYS", default=30)
CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS = env.int("CDP_RECOMMENDATION_EXCLUDE_BOUGHT_DAYS", default=30)

# --- Observability: logs, health, metrics (docs/operations.md) -------------------------
# Readable lines in development, JSON lines in production (CDP_LOG_FORMAT=text|json); each
# carries the request id (and the task inside a worker); phones, e-mails and API keys are
# redacted from the finished line (cdp/logs.py).
CDP_LOG_FORMAT = env.str("CDP_LOG_FORMAT", default="text")
from cdp.logs import FORMATTERS as LOG_FORMATTERS  # noqa: E402
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "cdp.observability.LogContextFilter"},
                "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "formatters": copy.deepcopy(LOG_FORMATTERS),
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": CDP_LOG_FORMAT},
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own console handler (plain, unredacted, DEBUG only) replaced: its lines reach
        # ours through the root; errors still mail ADMINS (when set) outside DEBUG.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        # runserver's access log in the same format, with the request id
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
# /ready/: each check gives up after this long; the broker's (connect and answer) sooner.
CDP_READY_CHECK_TIMEOUT = env.float("CDP_READY_CHECK_TIMEOUT", default=2.0)
CDP_BROKER_CHECK_TIMEOUT = env.float("CDP_BROKER_CHECK_TIMEOUT", default=1.0)
# /metrics: readable only with `Authorization: Bearer <CDP_METRICS_TOKEN>` and/or from these
# addresses (comma-separated IPs or networks); with neither set the endpoint answers 404.
CDP_METRICS_TOKEN = env.str("CDP_METRICS_TOKEN", default="")
CDP_METRICS_ALLOWED_IPS = env.list("CDP_METRICS_ALLOWED_IPS", default=[])
# django-prometheus: latency buckets for the request histograms (seconds).
PROMETHEUS_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))

# --- Campaigns ------------------------------------------------------------------------
# Where links in messages point (/r/… clicks, /u/… unsubscribe): the public address.
CDP_PUBLIC_URL = env.str("CDP_PUBLIC_URL", default="http://127.0.0.1:8000")
# At most N messages per customer per channel in D days, across all campaigns.
CAMPAIGN_FREQUENCY_CAP = (env.int("CDP_CAMPAIGN_CAP_MESSAGES", default=3), env.int("CDP_CAMPAIGN_CAP_DAYS", default=7))
# Quiet hours per channel, in TIME_ZONE: a message due inside waits until the window ends.
CAMPAIGN_QUIET_HOURS = env.json("CDP_CAMPAIGN_QUIET_HOURS", default={"sms": ["21:00", "08:00"],
                                                                      "app_push": ["21:00", "08:00"]})
CAMPAIGN_HOLDOUT_PERCENT = env.int("CDP_CAMPAIGN_HOLDOUT_PERCENT", default=10)
# Customers no campaign ever messages (a long-term control group), by public id.
CAMPAIGN_GLOBAL_CONTROL_PERCENT = env.int("CDP_CAMPAIGN_GLOBAL_CONTROL_PERCENT", default=0)
# Launches larger than this need an administrator's approval (four eyes).
CAMPAIGN_APPROVAL_THRESHOLD = env.int("CDP_CAMPAIGN_APPROVAL_THRESHOLD", default=50_000)
CAMPAIGN_NAME_FALLBACK = env.str("CDP_CAMPAIGN_NAME_FALLBACK", default="尊敬的会员")
# Sending: drains per destination (workers sharing it), a drain's time budget, retries.
CAMPAIGN_DRAINS_PER_DESTINATION = env.int("CDP_CAMPAIGN_DRAINS_PER_DESTINATION", default=2)
CAMPAIGN_DRAIN_SECONDS = env.int("CDP_CAMPAIGN_DRAIN_SECONDS", default=50)
# A drain claims this many requests' worth of messages at once (fewer reads and writes per message).
CAMPAIGN_REQUESTS_PER_CLAIM = env.int("CDP_CAMPAIGN_REQUESTS_PER_CLAIM", default=5)
CAMPAIGN_RETRY_BASE_SECONDS = env.int("CDP_CAMPAIGN_RETRY_BASE_SECONDS", default=30)
CAMPAIGN_RETRY_MAX_SECONDS = env.int("CDP_CAMPAIGN_RETRY_MAX_SECONDS", default=3600)
# A batch `sending` for longer than this belonged to a worker that died.
CAMPAIGN_SENDING_STALE_SECONDS = env.int("CDP_CAMPAIGN_SENDING_STALE_SECONDS", default=120)
# Triggers look back this far past their cursor, for events that arrive late.
CAMPAIGN_TRIGGER_MARGIN_SECONDS = env.int("CDP_CAMPAIGN_TRIGGER_MARGIN_SECONDS", default=60)
# Results keep being recomputed this long after the attribution window closes, for events
# that occurred inside it but arrive late; then they are frozen.
CAMPAIGN_RESULT_LATE_HOURS = env.int("CDP_CAMPAIGN_RESULT_LATE_HOURS", default=24)
