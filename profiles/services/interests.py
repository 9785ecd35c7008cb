"""Interest scores: behaviour → interest tags with a time decay, recomputed set-based.

For one mapping (tag T, events E with weights w, property P in V, half-life h days,
saturation s, threshold t), a customer's

    score  = Σ over their matching events of  w(event) · 0.5 ^ (age in days / h)
    weight = score / (score + s)                      (0 ≤ weight < 1; score = s → 0.5)

and they hold T (source "interest", with that weight) exactly when weight ≥ t. An event
today counts w, one h days old w/2, one 2h days old w/4. Events dated in the future count
as today.
"""
import datetime

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Greatest, Power
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.sql import constant, insert_from_select

from .. import activity
from ..models import (
    Event,
    InterestMapping,
    InterestScore,
    Profile,
    ProfileStatus,
    ProfileTag,
    TagSource,
    event_property_path,
)
from .tags import _locked, tag_count_refresh


class DaysBetween(Func):
    """(later − earlier) in days, as a float, on SQLite and PostgreSQL."""

    output_field = FloatField()

    def __init__(self, earlier, later):
        super().__init__(earlier, later)

    def as_sql(self, compiler, connection, **extra):
        earlier, earlier_params = compiler.compile(self.source_expressions[0])
        later, later_params = compiler.compile(self.source_expressions[1])
        if connection.vendor == "sqlite":
            return f"(julianday({later}) - julianday({earlier}))", [*later_params, *earlier_params]
        return (
            f"(EXTRACT(EPOCH FROM ({later} - {earlier}))::double precision / 86400.0)",
            [*later_params, *earlier_params],
        )


def interest_weight(score: float, saturation: float) -> float:
    """The documented arithmetic, for one customer (the SQL does the same for all)."""
    return score / (score + saturation)


def interests_recompute(*, mappings=None, now: datetime.datetime | None = None) -> dict[str, dict[str, int]]:
    """Recompute every active mapping (or the given ones); returns per tag slug the
    numbers of customers who gained, kept and lost the tag."""
    now = now or timezone.now()
    mappings = mappings if mappings is not None else InterestMapping.objects.filter(is_active=True)
    return {mapping.tag.slug: interest_mapping_recompute(mapping=mapping, now=now) for mapping in mappings}


def interest_mapping_recompute(*, mapping: InterestMapping, now: datetime.datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    actor = Actor.system("interest scores")  # shown in the reader's language (cdp.actors)
    reason = _("interest weight ≥ %(threshold)s (%(events)s; half-life %(days)s days)") % {
        "threshold": mapping.threshold,
        "events": ", ".join(f"{name}×{weight}" for name, weight in mapping.event_weights.items()),
        "days": mapping.half_life_days,
    }
    with transaction.atomic():
        tag = _locked(mapping.tag)
        _scores_table_fill(mapping, now)
        qualifying = InterestScore.objects.filter(weight__gte=mapping.threshold)
        holders = ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("pk"))

        lost = Profile.objects.filter(
            Exists(holders.filter(source=TagSource.INTEREST)),
            ~Exists(qualifying.filter(profile_id=OuterRef("pk"))),
        )
        lost_count = activity.tag_removed(
            profiles=lost, tag=tag, source=TagSource.INTEREST, actor=actor,
            reason=_("interest weight fell below %(threshold)s") % {"threshold": mapping.threshold},
        )
        ProfileTag.objects.filter(tag=tag, source=TagSource.INTEREST, profile__in=lost.values("pk")).delete()

        kept = ProfileTag.objects.filter(tag=tag, source=TagSource.INTEREST)
        kept_count = kept.update(
            weight=Subquery(InterestScore.objects.filter(profile_id=OuterRef("profile_id")).values("weight")[:1]),
            reason=reason[:255],
        )

        # Customers tagged by hand keep their manual row; only the others gain one.
        gained = Profile.objects.filter(
            status=ProfileStatus.ACTIVE, pk__in=qualifying.values("profile_id"),
        ).filter(~Exists(holders))
        gained_count = activity.tag_added(profiles=gained, tag=tag, source=TagSource.INTEREST, reason=reason, actor=actor)
        rows = qualifying.filter(
            Exists(Profile.objects.filter(pk=OuterRef("profile_id"), status=ProfileStatus.ACTIVE)),
            ~Exists(ProfileTag.objects.filter(tag=tag, profile_id=OuterRef("profile_id"))),
        ).annotate(
            t_tag=constant(tag.pk, IntegerField()),
            t_source=constant(TagSource.INTEREST.value, CharField()),
            t_label=constant(actor.label, CharField()),
            t_at=constant(now, DateTimeField()),
            t_reason=constant(reason[:255], CharField()),
        ).values("profile_id", "t_tag", "t_source", "t_label", "t_at", "weight", "t_reason")
        insert_from_select(ProfileTag, {
            "profile_id": "profile_id", "tag_id": "t_tag", "source": "t_source", "assigned_by_label": "t_label",
            "assigned_at": "t_at", "weight": "weight", "reason": "t_reason",
        }, rows)
        _scores_table_drop()
        tag_count_refresh(tag)
        InterestMapping.objects.filter(pk=mapping.pk).update(last_run_at=now)
    return {"gained": gained_count, "kept": kept_count, "lost": lost_count}


def _scores_table_fill(mapping: InterestMapping, now: datetime.datetime) -> None:
    """Materialise this mapping's per-customer weights in a temporary table, so the
    gained/kept/lost statements read them instead of re-scanning events."""
    event_weight = Case(
        *[When(name=name, then=Value(float(weight))) for name, weight in mapping.event_weights.items()],
        default=Value(0.0), output_field=FloatField(),
    )
    age_days = Greatest(DaysBetween(F("occurred_at"), Value(now, output_field=DateTimeField())), Value(0.0))
    decay = Power(Value(0.5), age_days / Value(float(mapping.half_life_days)))
    scores = (
        Event.objects.filter(
            name__in=list(mapping.event_weights),
            **{f"{event_property_path(mapping.property_name, list(mapping.property_values))}__in":
               list(mapping.property_values)},
        )
        .order_by()
        .values("profile_id")
        .annotate(score=Cast(Sum(event_weight * decay), FloatField()))
        .annotate(weight=F("score") / (F("score") + Value(float(mapping.saturation))))
        .values("profile_id", "weight")
    )
    sql, params = scores.query.sql_with_params()
    table = connection.ops.quote_name(InterestScore._meta.db_table)
    _scores_table_drop()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS SELECT profile_id, weight FROM ({sql}) AS scores", params)
        cursor.execute(f"CREATE INDEX {connection.ops.quote_name(InterestScore._meta.db_table + '_profile')} ON {table} (profile_id)")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")


def _scores_table_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(InterestScore._meta.db_table)}")
