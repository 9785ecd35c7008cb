"""Slugs for segments named in Chinese: the name in pinyin ("上海女性" → shang-hai-nv-xing),
made unique; a short id when the name has nothing to spell."""
import uuid

from django.utils.text import slugify
from pypinyin import lazy_pinyin

from .models import Segment

MAX_BASE = 60  # leaves room for "-<n>" within the field's 100 characters


def slug_from_name(name: str) -> str:
    """The name spelled in pinyin, one syllable per word, ASCII only; "" when nothing is left."""
    spelled = " ".join(lazy_pinyin(name or ""))
    slug = slugify(spelled)
    if len(slug) > MAX_BASE:
        slug = slug[:MAX_BASE].rsplit("-", 1)[0]
    return slug.strip("-")


def segment_slug_suggest(name: str, *, exclude_pk: int | None = None) -> str:
    """A slug no other segment uses, for a segment called `name`."""
    base = slug_from_name(name) or f"segment-{uuid.uuid4().hex[:6]}"
    taken = set(Segment.objects.exclude(pk=exclude_pk).filter(slug__startswith=base).values_list("slug", flat=True))
    slug, suffix = base, 1
    while slug in taken:
        suffix += 1
        slug = f"{base}-{suffix}"
    return slug
