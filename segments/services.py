"""Writes for segments: saving a definition and recomputing membership set-based."""
import datetime
import time

from django.db import transaction
from django.db.models import BigIntegerField, DateTimeField, Exists, F, OuterRef
from django.utils import timezone

from cdp.actors import Actor
from cdp.sql import constant, insert_from_select
from profiles import activity
from profiles.models import Profile, ProfileStatus

from .conditions import compile_condition, parse
from .models import Segment, SegmentMembership, SegmentSnapshot


def segment_save(*, segment: Segment, definition: dict) -> Segment:
    """Validate and store a definition (ValidationError naming the bad node); a changed
    definition bumps the version, which makes any calculation under way obsolete."""
    parse(definition)
    with transaction.atomic():
        if segment.pk is None:
            segment.definition = definition
            segment.save()
        else:
            locked = Segment.objects.select_for_update().get(pk=segment.pk)
            changed = locked.definition != definition
            segment.definition = definition
            segment.version = locked.version + (1 if changed else 0)
            segment.save()
    return segment


def segment_recompute(*, segment_id: int, version: int | None = None, now: datetime.datetime | None = None
                      ) -> SegmentSnapshot | None:
    """Recompute a dynamic segment's members: newcomers enter, leavers exit, each with a
    timeline entry, all set-based. Returns None when the segment changed since `version`
    (a newer calculation will write instead). A failure is counted and kept on the
    segment, then raised."""
    now = now or timezone.now()
    started = time.monotonic()
    try:
        with transaction.atomic():
            segment = Segment.objects.select_for_update().get(pk=segment_id)
            if segment.kind != Segment.Kind.DYNAMIC or (version is not None and version != segment.version):
                return None
            matching = Profile.objects.filter(compile_condition(parse(segment.definition), now),
                                              status=ProfileStatus.ACTIVE)
            members = SegmentMembership.objects.filter(segment=segment)
            actor = Actor.system("segment")
            info = {"segment_slug": segment.slug, "segment_name": segment.name, "version": segment.version}
            leavers = Profile.objects.filter(
                Exists(members.filter(profile_id=OuterRef("pk"))),
            ).exclude(pk__in=matching.values("pk"))
            exited = activity.segment_exited(profiles=leavers, actor=actor, **info)
            members.filter(profile__in=leavers.values("pk")).delete()

            newcomers = matching.filter(~Exists(members.filter(profile_id=OuterRef("pk"))))
            entered = activity.segment_entered(profiles=newcomers, actor=actor, **info)
            insert_from_select(SegmentMembership, {"segment_id": "m_segment", "profile_id": "m_profile",
                                                   "entered_at": "m_at"}, newcomers.order_by().annotate(
                m_segment=constant(segment.pk, BigIntegerField()), m_profile=F("pk"),
                m_at=constant(now, DateTimeField()),
            ).values("m_segment", "m_profile", "m_at"))

            count = members.count()
            Segment.objects.filter(pk=segment.pk).update(
                member_count=count, last_calculated_at=now, calculated_version=segment.version, last_error="",
            )
            return SegmentSnapshot.objects.create(
                segment=segment, version=segment.version, calculated_at=now, member_count=count,
                entered=entered, exited=exited, duration_ms=int((time.monotonic() - started) * 1000),
            )
    except Exception as error:
        Segment.objects.filter(pk=segment_id).update(last_error=str(error)[:2000], error_count=F("error_count") + 1)
        raise
