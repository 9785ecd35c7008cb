"""Writes for segments: saving a definition and recomputing membership set-based."""
import datetime
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import BigIntegerField, DateTimeField, F
from django.utils import timezone

from cdp.actors import Actor
from cdp.sql import constant, insert_from_select, tune_for_analysis
from profiles import activity
from profiles.models import Identity, IdentityKind, Profile, ProfileStatus
from profiles.normalisers import identity_keys

from .conditions import compile_condition, parse
from .models import RecomputeChange, Segment, SegmentMembership, SegmentSnapshot


def segment_save(*, segment: Segment, definition: dict) -> Segment:
    """Validate and store a definition (ValidationError naming the bad node); a changed
    definition bumps the version, which makes any calculation under way obsolete."""
    parse(definition, defining=segment.slug)
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
    timeline entry, all set-based; the condition runs once, into a temporary table that the
    other statements read. Returns None when the segment changed since `version`
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
            _changes_table_fill(segment, matching)
            changes = RecomputeChange.objects
            leavers, newcomers = changes.filter(entering=False), changes.filter(entering=True)
            exited = activity.segment_exited(profiles=leavers, actor=actor, **info)
            members.filter(profile_id__in=leavers.values("id")).delete()
            entered = activity.segment_entered(profiles=newcomers, actor=actor, **info)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {_quoted(SegmentMembership._meta.db_table)} (segment_id, profile_id, entered_at) "
                    f"SELECT %s, id, %s FROM {_quoted(CHANGES_TABLE)} WHERE entering", [segment.pk, now])

            _changes_tables_drop()
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


# Temporary tables (one per connection, inside the recompute's transaction): who matches,
# then who enters and who leaves, so that the condition, however costly, is evaluated once.
MATCHING_TABLE, CHANGES_TABLE = "segment_recompute_matching", RecomputeChange._meta.db_table


def _quoted(table: str) -> str:
    return connection.ops.quote_name(table)


def _changes_table_fill(segment: Segment, matching) -> None:
    sql, params = matching.order_by().annotate(matched_id=F("pk")).values("matched_id").query.sql_with_params()
    members = _quoted(SegmentMembership._meta.db_table)
    matched, changes = _quoted(MATCHING_TABLE), _quoted(CHANGES_TABLE)
    _changes_tables_drop()
    tune_for_analysis()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {matched} AS SELECT selected.matched_id AS id FROM ({sql}) AS selected",
                       params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {matched}")
        cursor.execute(f"CREATE TEMPORARY TABLE {changes} (id bigint NOT NULL, entering boolean NOT NULL)")
        cursor.execute(
            f"INSERT INTO {changes} (id, entering) SELECT t.id, %s FROM {matched} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {members} m WHERE m.segment_id = %s AND m.profile_id = t.id)", [True, segment.pk])
        cursor.execute(
            f"INSERT INTO {changes} (id, entering) SELECT m.profile_id, %s FROM {members} m WHERE m.segment_id = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {matched} t WHERE t.id = m.profile_id)", [False, segment.pk])
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {changes}")


def _changes_tables_drop() -> None:
    with connection.cursor() as cursor:
        for table in (MATCHING_TABLE, CHANGES_TABLE):
            cursor.execute(f"DROP TABLE IF EXISTS {_quoted(table)}")


def segment_freeze(*, segment: Segment, now: datetime.datetime | None = None) -> Segment:
    """A static copy of a segment's current members, named after the moment it was taken."""
    now = now or timezone.now()
    stamp = timezone.localtime(now).strftime("%Y-%m-%d %H:%M")
    with transaction.atomic():
        frozen = Segment.objects.create(
            name=f"{segment.name} @ {stamp}"[:150], slug=f"{segment.slug}-{timezone.localtime(now):%Y%m%d%H%M%S}"[:100],
            kind=Segment.Kind.STATIC, description=segment.description, definition=segment.definition,
        )
        rows = SegmentMembership.objects.filter(segment=segment).order_by().annotate(
            m_segment=constant(frozen.pk, BigIntegerField()), m_at=constant(now, DateTimeField()),
        ).values("m_segment", "profile_id", "m_at")
        count = insert_from_select(SegmentMembership, {"segment_id": "m_segment", "profile_id": "profile_id",
                                                       "entered_at": "m_at"}, rows)
        _static_snapshot(frozen, count, now)
    return frozen


@dataclass
class ListLine:
    number: int
    text: str


def segment_from_list(*, name: str, slug: str, lines: list[str], now: datetime.datetime | None = None
                      ) -> tuple[Segment, list[ListLine]]:
    """A static segment of the customers named one per line by phone (any format), email,
    CRM id or any other identity; returns it with the lines that matched nobody."""
    now = now or timezone.now()
    candidates: dict[int, set[tuple[str, str]]] = {}
    kinds = list(IdentityKind.objects.values_list("code", flat=True))
    for number, text in enumerate(lines, start=1):
        if text.strip():
            candidates[number] = identity_keys(kinds, text)
    wanted = {key for keys in candidates.values() for key in keys}
    owners: dict[tuple[str, str], int] = {}
    values = {value for _kind, value in wanted}
    for chunk in _chunks(sorted(values), 5000):
        found = Identity.objects.filter(kind_id__in=kinds, value__in=chunk).values_list("kind", "value", "profile_id")
        for kind, value, profile_id in found:
            owners[(kind, value)] = profile_id
    matched, unmatched = set(), []
    for number, keys in candidates.items():
        found = {owners[key] for key in keys if key in owners}
        if found:
            matched |= found
        else:
            unmatched.append(ListLine(number, lines[number - 1].strip()))
    with transaction.atomic():
        segment = Segment.objects.create(name=name, slug=slug, kind=Segment.Kind.STATIC)
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, profile_id=pk, entered_at=now) for pk in sorted(matched)],
            batch_size=5000,
        )
        _static_snapshot(segment, len(matched), now)
    return segment, unmatched


def _static_snapshot(segment: Segment, count: int, now: datetime.datetime) -> None:
    segment.member_count, segment.last_calculated_at, segment.calculated_version = count, now, 1
    segment.save(update_fields=["member_count", "last_calculated_at", "calculated_version"])
    SegmentSnapshot.objects.create(segment=segment, version=1, calculated_at=now, member_count=count,
                                   entered=count, exited=0, duration_ms=0)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
