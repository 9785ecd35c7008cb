"""Tracking sources and their write keys.

A write key reads `<prefix>.<secret>` like a partner API key (the same generator and
SHA-512 hash, cdp.api.keys); only its hash is kept and it is shown once, when it is made
or rotated. A write key can only send events and identify customers: it opens nothing
but the collection endpoints. Browser sources publish it in their pages, so what it may
do is bounded by the source's allowed origins and by the collection endpoints' limits.

The collection endpoints find a source by its key through the cache for
KEY_CACHE_SECONDS (no query per message batch); rotating drops the entry at once."""
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

from cdp.partners import partner_code_from_name

from ..models import CollectSource

_generator = KeyGenerator(prefix_length=8, secret_key_length=32)
KEY_CACHE_SECONDS = 5


@transaction.atomic
def source_create(*, name: str, code: str = "", **fields) -> tuple[CollectSource, str]:
    """A new source and its write key: (the row, the key). Show the key once."""
    source = CollectSource(name=name, code=code or source_code_free(name), **fields)
    key = source_key_assign(source)
    source.full_clean()
    source.save(force_insert=True)
    return source, key


def source_key_assign(source: CollectSource) -> str:
    """Give a source (new, or one whose key is rotated) a new key; returns it. The old key
    stops working as soon as the row is saved."""
    old_prefix = source.key_prefix
    key, source.key_prefix, source.key_hash = _generator.generate()
    source.key_created_at = timezone.now()
    if old_prefix:
        cache.delete(_cache_key(old_prefix))
        transaction.on_commit(lambda: cache.delete(_cache_key(old_prefix)))
    return key


@transaction.atomic
def source_key_rotate(*, source: CollectSource) -> str:
    key = source_key_assign(source)
    source.save(update_fields=["key_prefix", "key_hash", "key_created_at"])
    return key


def source_for_key(key: str) -> CollectSource | None:
    """The active source whose write key this is, or None."""
    prefix, dot, secret = (key or "").partition(".")
    if not (dot and secret and len(prefix) == 8):
        return None
    source = cache.get(_cache_key(prefix))
    if source is None:
        source = CollectSource.objects.select_related("user_id_kind").filter(key_prefix=prefix).first()
        if source is None:
            return None
        cache.set(_cache_key(prefix), source, KEY_CACHE_SECONDS)
    if not source.is_active or not _generator.verify(key, source.key_hash):
        return None
    return source


def source_code_free(name: str) -> str:
    base = partner_code_from_name(name)[:32] or "source"
    code, n = base, 2
    while CollectSource.objects.filter(code=code).exists():
        code, n = f"{base}-{n}", n + 1
    return code


def source_forget(prefix: str) -> None:
    """Read the source of this key prefix afresh at its next message (its row changed)."""
    cache.delete(_cache_key(prefix))


def _cache_key(prefix: str) -> str:
    return f"cdp-write-key:{prefix}"
