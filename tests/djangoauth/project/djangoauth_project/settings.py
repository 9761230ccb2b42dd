"""Settings for the djangoauth test service: a stand-in for the SimpleJWT auth
service that jwtgate sits in front of.

Everything a test may vary comes from DJANGOAUTH_* environment variables (see
tests/djangoauth/README.md). The values here are test fixtures, not secrets.
"""
import os
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

# DefaultSigningKey in tests/djangoauth/djangoauth.go must stay equal to this.
DEFAULT_SIGNING_KEY = "jwtgate-djangoauth-test-signing-key-not-a-secret"

ASYMMETRIC_PREFIXES = ("RS", "ES")


def _env(name, default=None):
    value = os.environ.get(name, "")
    return value if value != "" else default


def _seconds(name, default):
    raw = _env(name)
    if raw is None:
        return timedelta(seconds=default)
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number of seconds")
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, got {value}")
    return timedelta(seconds=value)


DB_PATH = _env("DJANGOAUTH_DB")
if DB_PATH is None:
    raise ImproperlyConfigured("DJANGOAUTH_DB must name the SQLite file to use")

SECRET_KEY = "jwtgate-djangoauth-django-secret-key-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "djangoauth_project.urls"
WSGI_APPLICATION = "djangoauth_project.wsgi.application"
TEMPLATES = []

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DB_PATH,
        # Management commands (createtestuser, setactive) write while gunicorn's
        # workers serve requests; wait for the lock instead of failing at once.
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# No validators: tests pick short passwords, and createtestuser bypasses them anyway.
AUTH_PASSWORD_VALIDATORS = []
# Hashing dominates login and createtestuser time with PBKDF2's default
# iteration count; MD5 keeps tests fast. Never do this outside tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "America/Chicago"
USE_I18N = True
USE_L10N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ("rest_framework.permissions.IsAuthenticated",),
    # JSON only: the browsable API needs templates and static files.
    "DEFAULT_RENDERER_CLASSES": ("rest_framework.renderers.JSONRenderer",),
}

ALGORITHM = _env("DJANGOAUTH_ALGORITHM", "HS256")
ASYMMETRIC = ALGORITHM.startswith(ASYMMETRIC_PREFIXES)
SIGNING_KEY = _env("DJANGOAUTH_SIGNING_KEY")
VERIFYING_KEY = _env("DJANGOAUTH_VERIFYING_KEY", "")
if ASYMMETRIC:
    if SIGNING_KEY is None:
        raise ImproperlyConfigured(
            f"DJANGOAUTH_ALGORITHM={ALGORITHM} needs a PEM private key in DJANGOAUTH_SIGNING_KEY"
        )
    if VERIFYING_KEY == "":
        # Derive the public key so callers may pass only the private one.
        from cryptography.hazmat.primitives import serialization

        VERIFYING_KEY = (
            serialization.load_pem_private_key(SIGNING_KEY.encode(), password=None)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            .decode()
        )
elif SIGNING_KEY is None:
    SIGNING_KEY = DEFAULT_SIGNING_KEY

# DJANGOAUTH_KID: set, issued tokens carry it in their header (stock SimpleJWT
# 5.2.2 cannot; see accounts/tokens.py). Unset, tokens carry no kid, like the
# real service, while the JWKS still names its key "k1".
TOKEN_KID = _env("DJANGOAUTH_KID")
JWKS_KID = TOKEN_KID or "k1"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": _seconds("DJANGOAUTH_ACCESS_TTL_SECONDS", 300),
    "REFRESH_TOKEN_LIFETIME": _seconds("DJANGOAUTH_REFRESH_TTL_SECONDS", 86400),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": ALGORITHM,
    "SIGNING_KEY": SIGNING_KEY,
    "VERIFYING_KEY": VERIFYING_KEY,
    "ISSUER": _env("DJANGOAUTH_ISSUER"),
    "AUDIENCE": _env("DJANGOAUTH_AUDIENCE"),
    # Token classes that sign through accounts.tokens' kid-aware backend.
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "accounts.serializers.TokenRefreshSerializer",
    "TOKEN_BLACKLIST_SERIALIZER": "accounts.serializers.TokenBlacklistSerializer",
}

# Errors go to stderr, which the Go helper captures for failure messages.
# Request bodies and headers (passwords, tokens) are never logged.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
