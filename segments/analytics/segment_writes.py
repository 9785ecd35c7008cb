"""The analyses' two writes: the customers who dropped out after a funnel step become a
static segment (frozen now, written set-based), and RFM cells become a dynamic segment
on the stored scores (it stays current as the scores change)."""
from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils import timezone

from ..models import Segment, SegmentMembership
from ..services import _static_snapshot, segment_save
from ..slugs import slug_from_name
from .funnel import FunnelQuery, funnel_dropped_sql
from .rfm import rfm_definition


def segment_from_funnel_drop_off(*, query: FunnelQuery, step: int, name: str,
                                 now: datetime.datetime | None = None) -> Segment:
    """A static segment of those who reached step `step` but not the next, as the funnel
    counted them at `now`."""
    now = now or timezone.now()
    sql, params = funnel_dropped_sql(query, step, now)
    with transaction.atomic():
        segment = Segment.objects.create(name=name[:150], slug=unique_slug(name, now), kind=Segment.Kind.STATIC,
                                         description=name)
        members = connection.ops.quote_name(SegmentMembership._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {members} (segment_id, profile_id, entered_at) "
                           f"SELECT %s, d.profile_id, %s FROM ({sql}) d",
                           [segment.pk, connection.ops.adapt_datetimefield_value(now), *params])
            count = cursor.rowcount
        _static_snapshot(segment, count, now)
    return segment


def segment_from_rfm_cells(*, cells: list[tuple[int, int]], name: str, within: Segment | None = None,
                           now: datetime.datetime | None = None) -> Segment:
    """A dynamic segment of the customers in these R×F cells (of segment `within`, when
    the grid was limited to one); its members are computed by the usual recompute
    (queued by the caller after commit)."""
    now = now or timezone.now()
    definition = rfm_definition(cells)
    if within is not None:
        definition = {"all": [{"segment": within.slug, "op": "in"}, definition]}
    return segment_save(segment=Segment(name=name[:150], slug=unique_slug(name, now)), definition=definition)


def unique_slug(name: str, now: datetime.datetime) -> str:
    base = (slug_from_name(name) or "analysis")[:80]  # a Chinese name in pinyin
    slug = f"{base}-{timezone.localtime(now):%Y%m%d%H%M%S}"
    suffix = 1
    while Segment.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base}-{timezone.localtime(now):%Y%m%d%H%M%S}-{suffix}"
    return slug
