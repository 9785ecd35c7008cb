"""Production: DEBUG off, secrets required, HTTPS everywhere.

DJANGO_SETTINGS_MODULE=cdp.settings.production with SECRET_KEY, ALLOWED_HOSTS,
DATABASE_URL (PostgreSQL), CELERY_BROKER_URL and CACHE_URL (Redis) in the environment.
`python manage.py check --deploy` passes with these.
"""
import copy

from . import *  # noqa: F401,F403
from . import env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")  # no default: refuse to start without one
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Behind a TLS-terminating proxy (nginx, a load balancer) that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Keys the hashes of erased people's identifiers (profiles.Suppression): its own secret,
# never SECRET_KEY's value (rotating SECRET_KEY would let erased people come back, and a
# leaked SECRET_KEY would let anyone test phone numbers against the hashes).
CDP_SUPPRESSION_KEY = env.str("CDP_SUPPRESSION_KEY")  # no default: refuse to start without one
if CDP_SUPPRESSION_KEY == SECRET_KEY or len(CDP_SUPPRESSION_KEY) < 32:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CDP_SUPPRESSION_KEY must be its own secret of at least 32 characters, "
                               "not SECRET_KEY's value.")

# --- Observability (docs/operations.md) ------------------------------------------------
# JSON lines for the log shipper; CDP_LOG_FORMAT=text reads them by eye.
LOGGING = copy.deepcopy(LOGGING)  # noqa: F405
LOGGING["handlers"]["console"]["formatter"] = env.str("CDP_LOG_FORMAT", default="json")
# Probes and the scraper reach the process over plain HTTP inside the network, not through the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics$"]
