"""The demo shop's tracking source (“演示商城”) and its write key.

A write key is normally shown once and only its hash is kept, so a page cannot read it back.
The demo shop (profiles.collect.demo_shop) must print its key into the page, so the demo
source's key is not random: it is derived from settings.SECRET_KEY (an HMAC), and both
generate_demo and the page compute the same key.

Why this is safe enough, and not a fixed key in the code:
- a fixed key would be the same in every deployment, so anyone could send events into any
  installation that ran generate_demo; a key derived from SECRET_KEY is known only where the
  secret is (production settings refuse to start without their own SECRET_KEY);
- the demo shop, the only place that prints the key, is served only when
  settings.CDP_DEMO_SHOP is on, which defaults to DEBUG (so never in production unless
  someone turns it on on purpose), and the source is only made when the shop is on;
- like every browser source, the key only writes events, and browsers may only send it from
  the allowed origins (the local demo addresses); an administrator can deactivate the source
  (generate_demo leaves it deactivated).
Rotating the demo source's key in the admin stops the demo page from sending (the page says
so); the next generate_demo puts the derived key back.
"""
from django.conf import settings
from django.db import transaction
from django.utils.crypto import salted_hmac
from rest_framework_api_key.crypto import KeyGenerator

from ..models import CollectSource
from ..services.sources import source_create, source_for_key

DEMO_SOURCE_CODE = "demo-shop"
DEMO_SOURCE_NAME = "演示商城"
# Where `make run` serves the demo shop (runserver on 127.0.0.1:8000; localhost is the same machine).
DEMO_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")


def demo_shop_enabled() -> bool:
    """Whether the demo shop is served (and its source made): CDP_DEMO_SHOP, by default DEBUG."""
    return bool(getattr(settings, "CDP_DEMO_SHOP", settings.DEBUG))


def demo_write_key() -> str:
    """The demo source's write key, `<prefix>.<secret>` like any other, derived from SECRET_KEY."""
    digest = salted_hmac("cdp.demo_shop.write_key", "v1", algorithm="sha256").hexdigest()
    return f"{digest[:8]}.{digest[8:40]}"


@transaction.atomic
def demo_source_ensure(*, origins: list[str] | tuple[str, ...] = ()) -> CollectSource | None:
    """Make (or repair) the demo shop's source: its derived key and the demo origins (plus
    `origins`, e.g. a test's live server). None when the demo shop is off."""
    if not demo_shop_enabled():
        return None
    key = demo_write_key()
    wanted = [*DEMO_ORIGINS, *origins]
    source = CollectSource.objects.select_for_update().filter(code=DEMO_SOURCE_CODE).first()
    if source is None:
        source, _ = source_create(name=DEMO_SOURCE_NAME, code=DEMO_SOURCE_CODE, allowed_origins=wanted)
    missing = [origin for origin in wanted if origin not in source.allowed_origins]
    source.allowed_origins = [*source.allowed_origins, *missing]
    prefix, _dot, _secret = key.partition(".")
    source.key_prefix, source.key_hash = prefix, KeyGenerator(prefix_length=8, secret_key_length=32).hash(key)
    # An administrator's deactivation stands: only the key and the origins are put back.
    source.save(update_fields=["allowed_origins", "key_prefix", "key_hash"])
    return source


def demo_source_ready() -> bool:
    """Whether the page's key works (the source exists, is active and has not been rotated)."""
    return source_for_key(demo_write_key()) is not None
