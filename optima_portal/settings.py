"""One env-driven settings module.

Defaults need no server (SQLite and a filesystem Celery broker under ``var/``, console e-mail);
``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``EMAIL_URL`` switch to real services. Every secret may
also come from ``NAME_FILE`` (a mounted secret file), see ``docs/configuration.md``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()

VAR_DIR = Path(env.str("OPTIMA_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=True)
TESTING = "pytest" in sys.modules or env.bool("OPTIMA_TESTING", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: with DEBUG=0 set SECRET_KEY (or SECRET_KEY_FILE) to a long random value."
        )
    SECRET_KEY = "dev-insecure-only-for-local-development-do-not-use-in-production"

# The audit chain is keyed (HMAC-SHA256) with a secret kept outside the database, so someone who can
# only write to the database cannot recompute it (accounts/audit.py, docs/security.md).
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
if not AUDIT_HMAC_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "AUDIT_HMAC_KEY is not set: with DEBUG=0 set AUDIT_HMAC_KEY (or AUDIT_HMAC_KEY_FILE) to a "
            "long random value kept outside the database; it keys the audit hash chain."
        )
    AUDIT_HMAC_KEY = "dev-insecure-audit-chain-key-only-for-local-development"
elif len(AUDIT_HMAC_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_HMAC_KEY is too short: use at least 32 random characters.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_countries",
    "accounts",
    "catalogue",
    "cds",
    "feedback",
    "governance",
    "federation",
    "central",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "accounts.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "optima_portal.urls"
WSGI_APPLICATION = "optima_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'optima.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server, the Celery worker and beat share one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Take the write lock when a transaction starts, so concurrent writers wait for the
            # busy timeout instead of failing with "database is locked" on lock upgrade.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Tests that start real processes (a Celery worker, node agents) need a test database those
# processes can open too, so SQLite tests use a file rather than memory.
DATABASES["default"]["TEST"] = {
    "NAME": env.str(
        "TEST_DATABASE_NAME",
        default=str(VAR_DIR / "test-optima.sqlite3")
        if DATABASES["default"]["ENGINE"].endswith("sqlite3")
        else "test_optima",
    )
}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # PASSWORD_LOGIN=0 refuses every password check (log-in page, admin site) before ModelBackend.
    "accounts.oidc_backends.PasswordLoginSwitch",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing strength is not under test; fast hashing keeps the suite quick.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
ANONYMOUS_USER_NAME = None  # guardian: anonymous visitors hold no object permissions

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)  # absolute limit
# Idle timeout: a session unused this long is logged out (accounts.middleware.IdleTimeoutMiddleware).
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
# Two-factor authentication (accounts/otp.py): staff always, plus these roles; off only in tests.
OTP_ENFORCED = env.bool("OTP_ENFORCED", default=True)
OTP_REQUIRED_ROLES = env.list("OTP_REQUIRED_ROLES", default=["dac_member"])
OTP_TOTP_ISSUER = "OPTIMA Portal"

# Federated login (accounts/oidc.py): any number of OpenID Connect providers, each discovered from
# its issuer's metadata. OIDC_PROVIDERS=lslogin,egi with OIDC_LSLOGIN_ISSUER, _CLIENT_ID,
# _CLIENT_SECRET (or _CLIENT_SECRET_FILE), _NAME and an optional _CLAIM_MAP (JSON, off by default).
PASSWORD_LOGIN = env.bool("PASSWORD_LOGIN", default=True)
OIDC_PROVIDERS = {}
for _key in env.list("OIDC_PROVIDERS", default=[]):
    _prefix = f"OIDC_{_key.upper()}_"
    OIDC_PROVIDERS[_key.lower()] = {
        "issuer": env.str(_prefix + "ISSUER"),
        "client_id": env.str(_prefix + "CLIENT_ID"),
        "client_secret": env.str(_prefix + "CLIENT_SECRET", default=""),
        "name": env.str(_prefix + "NAME", default=_key),
        "scope": env.str(_prefix + "SCOPE", default="openid email profile"),
        "claim_map": env.json(_prefix + "CLAIM_MAP", default={}),
    }
# An ID token whose acr is one of these, or whose amr lists one of these, counts as two factors.
OIDC_MFA_ACR_VALUES = env.list("OIDC_MFA_ACR_VALUES", default=["https://refeds.org/profile/mfa"])
OIDC_MFA_AMR_VALUES = env.list("OIDC_MFA_AMR_VALUES", default=["mfa"])
OIDC_TIMEOUT_SECONDS = env.int("OIDC_TIMEOUT_SECONDS", default=10)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Production security (every flag from the environment, safe when DEBUG is off) ----------
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- I18N / static / media ------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Brussels")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG or TESTING
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Uploaded files are never served from a public path: views check permissions and stream them.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-public/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)

# --- E-mail ---------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="OPTIMA Portal <no-reply@optima.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------------------------
_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Database rows are the truth for background work; a result backend is optional.
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Each app adds its periodic jobs in its own ``beat.py`` (collected in optima_portal/celery.py).
CELERY_BEAT_SCHEDULE: dict = {}

# --- REST framework / OpenAPI ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # DRF's three, with a JSON parser that answers 400 to deeply nested JSON (accounts.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "accounts.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "accounts.api_errors.exception_handler",
    # Counted in the shared cache (CACHE_URL); rates read per request from the settings below.
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttles.AnonRateThrottle",
        "accounts.throttles.UserRateThrottle",
    ],
    # Which client address anonymous limits count by: 0 = the TCP peer (X-Forwarded-For is never
    # trusted); behind one proxy that appends X-Forwarded-For, 1.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
API_ANON_RATE = env.str("API_ANON_RATE", default="120/min")
API_USER_RATE = env.str("API_USER_RATE", default="600/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "OPTIMA Portal API",
    "DESCRIPTION": "Catalogue, access governance, federated analysis, clinical decision support and feedback.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    # No third-party validator badge (it would send the schema URL to swagger.io).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The document is the API for people; the node API is described in docs/node-agent.md.
    "PREPROCESSING_HOOKS": ["optima_portal.schema.exclude_node_api"],
    # The schema says what the URL resolver accepts (the API fuzzer sends what the schema allows).
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "tokenAuth": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "Personal API token: `Token <token>`",
            },
        }
    },
}

# --- Caching and logging --------------------------------------------------------------------
# Rate-limit counters live here: production with several server processes needs a shared cache
# (Redis); the in-process default counts per process (``check --deploy`` warns, accounts.checks).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # One line per request drowns out everything else (nodes poll every few seconds).
        "django.server": {
            "level": "INFO" if env.bool("LOG_REQUESTS", default=False) else "WARNING"
        },
        "axes": {"level": "WARNING"},
        "weasyprint": {"level": "ERROR"},
        "fontTools": {"level": "ERROR"},
    },
}

# --- Portal ---------------------------------------------------------------------------------
PORTAL_VERSION = "0.1.0"
AUDIT_EXPORT_MAX_ROWS = env.int("AUDIT_EXPORT_MAX_ROWS", default=100_000)
# Signed audit checkpoints (head hash, count, time), one file each, written by the beat task
# accounts.audit_checkpoint; in production a place the database role cannot write (docs/security.md).
AUDIT_CHECKPOINT_DIR = Path(
    env.str("AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "audit-checkpoints"))
)
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env.float("AUDIT_CHECKPOINT_INTERVAL_SECONDS", default=3600.0)
# Access requests waiting longer than this for a decision remind the data access committee.
GOVERNANCE_REQUEST_REMINDER_DAYS = env.int("GOVERNANCE_REQUEST_REMINDER_DAYS", default=14)
# Federated analysis: how long a node holds a claimed run, and how often the beat sweep runs.
FEDERATION_LEASE_SECONDS = env.int("FEDERATION_LEASE_SECONDS", default=600)
FEDERATION_POLL_INTERVAL_SECONDS = env.float("FEDERATION_POLL_INTERVAL_SECONDS", default=30.0)
# Node API protections (per node token); counters live in CACHE_URL, so share it between workers.
NODE_API_RATE = env.str("NODE_API_RATE", default="300/min")
NODE_API_MAX_BYTES = env.int("NODE_API_MAX_BYTES", default=1024 * 1024)
# Secure aggregation: peers polls one web server process may hold while keys are missing; run
# gunicorn's gthread worker with at least this many threads + 1 (a sync worker never holds one).
PEERS_LONG_POLL_SLOTS = env.int("PEERS_LONG_POLL_SLOTS", default=1)
# Federated learning on NVIDIA FLARE: the portal's admin startup kit (empty: the local POC system).
FLARE_ADMIN_STARTUP_KIT = env.str("FLARE_ADMIN_STARTUP_KIT", default="")
FLARE_ADMIN_USER = env.str("FLARE_ADMIN_USER", default="")
FLARE_WORK_DIR = env.str("FLARE_WORK_DIR", default=str(VAR_DIR / "flare"))
FLARE_TASK_TIMEOUT_SECONDS = env.int("FLARE_TASK_TIMEOUT_SECONDS", default=3600)
FLARE_MONITOR_INTERVAL_SECONDS = env.float("FLARE_MONITOR_INTERVAL_SECONDS", default=5.0)
FEEDBACK_ATTACHMENT_MAX_BYTES = env.int(
    "FEEDBACK_ATTACHMENT_MAX_BYTES", default=min(UPLOAD_MAX_BYTES, 5 * 1024 * 1024)
)
# The centralised route (central/, docs/central.md): uploads of OMOP extracts, encrypted at rest
# (AES-GCM, key from CENTRAL_UPLOAD_KEY or CENTRAL_UPLOAD_KEY_FILE: 32 bytes, base64), checked and
# loaded into one schema per dataset version of CENTRAL_OMOP_DATABASE_URL (empty: SQLite files).
CENTRAL_DIR = Path(env.str("CENTRAL_DIR", default=str(VAR_DIR / "central")))
CENTRAL_UPLOAD_MAX_BYTES = env.int("CENTRAL_UPLOAD_MAX_BYTES", default=5 * 1024**3)
CENTRAL_CHUNK_MAX_BYTES = min(8 * 1024 * 1024, DATA_UPLOAD_MAX_MEMORY_SIZE)
CENTRAL_UPLOAD_ABANDON_DAYS = env.int("CENTRAL_UPLOAD_ABANDON_DAYS", default=7)
# A check or load whose worker shows no progress for this long is queued again (beat job
# central.recover_stalled_uploads), at most CENTRAL_UPLOAD_MAX_ATTEMPTS times in all, then failed.
CENTRAL_UPLOAD_STALL_MINUTES = env.int("CENTRAL_UPLOAD_STALL_MINUTES", default=15)
CENTRAL_UPLOAD_MAX_ATTEMPTS = env.int("CENTRAL_UPLOAD_MAX_ATTEMPTS", default=3)
CENTRAL_UPLOAD_KEY = env.str("CENTRAL_UPLOAD_KEY", default="")
CENTRAL_OMOP_DATABASE_URL = env.str("CENTRAL_OMOP_DATABASE_URL", default="")
# FHIR servers a CDS Hooks request may name as fhirServer; anything else is never contacted.
CDS_HOOKS_FHIR_SERVERS = env.list("CDS_HOOKS_FHIR_SERVERS", default=[])
