"""Settings for the segmentation site, read from the environment.

Every value has a default that lets a laptop with only Python run the whole
site: SQLite under ``var/`` and a filesystem Celery broker under ``var/``.
Production sets ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (see README).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DJANGO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key() -> str:
    """A key kept in var/ so that a laptop needs no setup; production sets DJANGO_SECRET_KEY."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or local_secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "customers",
    "clustering",
    "purchases",
    "audit",
    "campaigns",
    "django_celery_beat",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "segmentation_site.htmx_cache.HtmxFragmentCacheMiddleware",
    "segmentation_site.security.ContentSecurityPolicyMiddleware",
    "segmentation_site.security.PrivateResponsesMiddleware",
    # Last: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "segmentation_site.urls"
WSGI_APPLICATION = "segmentation_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_config() -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    # Connections are kept for a minute and checked before each request reuses one, so a
    # database restart or failover costs a reconnect, not a server error.
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The web server and the worker write to one file: wait for the lock
        # instead of failing, and take it at the start of each transaction.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0
        # A file, not memory, so that a worker process started by a test sees the same data.
        config["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    return config


DATABASES = {"default": database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Failed sign-ins per user name and address before a pause.
LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
LOGIN_LOCKOUT_SECONDS = int(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900"))
# Reverse proxies in front of the site that append the address they saw to
# X-Forwarded-For (nginx: $proxy_add_x_forwarded_for). 0: the connection's address is the
# client's. Behind one TLS proxy: 1. Never more than there are: the entries further left
# are whatever the client sent.
SIGNIN_PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "0"))
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling (django-axes) on every form that authenticates a request, the admin's
# included: failures are counted per user name and client address in the database, with an
# atomic increment, so they count across web workers and while Redis is down.
AUTHENTICATION_BACKENDS = [
    "segmentation_site.security.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "segmentation_site.security.signin_username"
AXES_CLIENT_IP_CALLABLE = "segmentation_site.security.client_address"
AXES_LOCKOUT_CALLABLE = "segmentation_site.security.lockout_response"
# Failed attempts are kept (admin: Axes); a row per successful sign-in would only grow.
AXES_DISABLE_ACCESS_LOG = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))

# --- Security ------------------------------------------------------------------------------------
# Secure by default: without debug the site is served over HTTPS (behind a TLS proxy that
# sets X-Forwarded-Proto): HTTPS only, HSTS, secure cookies. DJANGO_HTTPS=false turns this
# off for a plain-HTTP deployment; `make run` (debug) is plain HTTP unless told otherwise.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 12 * 3600
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Uploaded CSV files above this size are streamed to a temporary file, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
# The largest CSV the upload page takes: checking and importing 16 MB (about 500,000
# customers) takes about 20 s on PostgreSQL, inside gunicorn's request timeout.
IMPORT_UPLOAD_MAX_BYTES = int(float(os.environ.get("IMPORT_UPLOAD_MAX_MB", "16")) * 1024 * 1024)

# An import that would change more than this share of the existing customers asks first.
IMPORT_CONFIRM_CHANGED_SHARE = float(os.environ.get("IMPORT_CONFIRM_CHANGED_SHARE", "0.2"))

# Fitted models live here, and are loaded only from here.
MODEL_STORAGE_DIR = Path(os.environ.get("MODEL_STORAGE_DIR", VAR_DIR / "models"))

REDIS_URL = os.environ.get("REDIS_URL", "")
# Shared by every process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "segmentation",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    # A broker that needs no server: kombu's filesystem transport, shared by
    # the web process and the worker through folders under var/.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "out"),
        "data_folder_out": str(CELERY_BROKER_DIR / "out"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for folder in ("out", "control"):
        (CELERY_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request that queues a retrain must not hang when the broker is down: fail fast.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "segmentation")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    # django-axes logs every successful sign-in at INFO; failures and lockouts are WARNINGs.
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Clustering ---------------------------------------------------------------------------------
CLUSTERING_RANDOM_STATE = int(os.environ.get("CLUSTERING_RANDOM_STATE", "0"))
# Customer assignments of older runs are deleted; their statistics stay.
CLUSTERING_KEEP_ASSIGNMENT_RUNS = int(os.environ.get("CLUSTERING_KEEP_ASSIGNMENT_RUNS", "5"))
# Threads numpy and scikit-learn may use while training (see services.training_run_execute).
CLUSTERING_THREADS = int(os.environ.get("CLUSTERING_THREADS", "1"))
CLUSTERING_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CLUSTERING_TASK_SOFT_TIME_LIMIT", "3600"))
# A running run whose worker has not beaten for this long is marked failed.
CLUSTERING_HEARTBEAT_SECONDS = float(os.environ.get("CLUSTERING_HEARTBEAT_SECONDS", "5"))
CLUSTERING_HEARTBEAT_TIMEOUT = float(os.environ.get("CLUSTERING_HEARTBEAT_TIMEOUT", "120"))
# How long a web process reuses the active model before checking the database again.
PREDICTION_CACHE_SECONDS = float(os.environ.get("PREDICTION_CACHE_SECONDS", "2"))
# How long a web process remembers an API user's permission (a revoked token stops at once).
API_PERMISSION_CACHE_SECONDS = float(os.environ.get("API_PERMISSION_CACHE_SECONDS", "2"))
# A run no worker has picked up after this long is marked failed.
CLUSTERING_PENDING_TIMEOUT = float(os.environ.get("CLUSTERING_PENDING_TIMEOUT", "900"))
# Celery beat looks for such runs this often, so one is failed even when nobody opens a page.
CLUSTERING_REAP_SECONDS = float(os.environ.get("CLUSTERING_REAP_SECONDS", "60"))
# A retrain with default options uses the numeric features at least this share of the
# customers have.
CLUSTERING_MIN_FEATURE_COVERAGE = float(os.environ.get("CLUSTERING_MIN_FEATURE_COVERAGE", "0.9"))
# The automatic K never chooses a segmentation with a segment smaller than this share of the
# customers, nor than this many customers.
CLUSTERING_MIN_SEGMENT_SHARE = float(os.environ.get("CLUSTERING_MIN_SEGMENT_SHARE", "0.01"))
CLUSTERING_MIN_SEGMENT_SIZE = int(os.environ.get("CLUSTERING_MIN_SEGMENT_SIZE", "10"))
CELERY_BEAT_SCHEDULE = {
    "reap-silent-training-runs": {
        "task": "clustering.tasks.reap_task",
        "schedule": CLUSTERING_REAP_SECONDS,
        # A reap that waited longer than its period is superseded by the next one.
        # (expire_seconds: the same for django-celery-beat's database scheduler.)
        "options": {"expires": CLUSTERING_REAP_SECONDS, "expire_seconds": CLUSTERING_REAP_SECONDS},
    },
    # The same for purchase imports and CLV fits (purchases.recovery).
    "reap-silent-purchase-jobs": {
        "task": "purchases.tasks.purchases_reap_task",
        "schedule": CLUSTERING_REAP_SECONDS,
        "options": {"expires": CLUSTERING_REAP_SECONDS, "expire_seconds": CLUSTERING_REAP_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Operations: schedules, drift, prediction history, notifications (operations app) -------------
# Celery beat (inside the worker in `make run`) reads its schedule from the database
# (django-celery-beat), so schedules edited on the operations page or in the admin take effect
# without a restart; the entries of CELERY_BEAT_SCHEDULE above are copied into it at start.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
# Predictions (page and API) are kept this many days, then pruned by a periodic task.
PREDICTION_HISTORY_DAYS = int(os.environ.get("PREDICTION_HISTORY_DAYS", "90"))
# API predictions are written to the history together, at most this many seconds later
# (0: each at once, as the page's are); see operations.history.
PREDICTION_HISTORY_FLUSH_SECONDS = float(os.environ.get("PREDICTION_HISTORY_FLUSH_SECONDS", "1"))
# How often beat measures drift, prunes history and notes that the worker is alive.
OPERATIONS_DRIFT_CHECK_SECONDS = float(os.environ.get("OPERATIONS_DRIFT_CHECK_SECONDS", "3600"))
OPERATIONS_PRUNE_SECONDS = float(os.environ.get("OPERATIONS_PRUNE_SECONDS", "86400"))
OPERATIONS_HEARTBEAT_SECONDS = float(os.environ.get("OPERATIONS_HEARTBEAT_SECONDS", "30"))
CELERY_BEAT_SCHEDULE.update(
    {
        "operations-drift-check": {
            "task": "operations.tasks.drift_check_task",
            "schedule": OPERATIONS_DRIFT_CHECK_SECONDS,
            "options": {"expire_seconds": OPERATIONS_DRIFT_CHECK_SECONDS},
        },
        "operations-prune": {
            "task": "operations.tasks.prune_task",
            "schedule": OPERATIONS_PRUNE_SECONDS,
            "options": {"expire_seconds": OPERATIONS_PRUNE_SECONDS},
        },
        "operations-heartbeat": {
            "task": "operations.tasks.heartbeat_task",
            "schedule": OPERATIONS_HEARTBEAT_SECONDS,
            "options": {"expire_seconds": OPERATIONS_HEARTBEAT_SECONDS},
        },
    }
)
# Notifications go to the managers by email: the console in `make run` (debug), SMTP from
# the DJANGO_EMAIL_* variables otherwise.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "segmentation@localhost")
# Where the site is reached: the links in notification emails start with it.
SITE_URL = os.environ.get("DJANGO_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
