"""Reads about consent: whether it counts right now, per customer and for a queryset."""
import datetime
from dataclasses import dataclass

from django.db.models import DateField, Exists, ExpressionWrapper, FilteredRelation, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from profiles.models import Profile, ProfileStatus, born_by

from .models import (
    Channel,
    ConsentRecord,
    ConsentState,
    ConsentStatus,
    DoNotContact,
    Purpose,
)

ADULT_AGE = 14  # PIPL Art. 31: under 14, a guardian consents


def is_minor(profile: Profile, today: datetime.date | None = None) -> bool:
    """Under 14 on `today` (born after the day 14 years back; 29 February born people
    turn 14 on 1 March in common years, like age_on). Unknown birth date: not flagged."""
    today = today or timezone.localdate()
    return profile.birth_date is not None and profile.birth_date > born_by(ADULT_AGE, today)


def _counting_grant(purpose: Purpose, now: datetime.datetime, *, state: str = "",
                    birth_date: str = "profile__birth_date") -> Q:
    """A ConsentState that counts as a grant right now: its fields under `state` (a
    relation prefix, empty on ConsentState itself), the customer's birth date at
    `birth_date`."""
    today = timezone.localdate(now)
    field = (lambda name: f"{state}__{name}") if state else (lambda name: name)
    return (
        Q(**{field("status"): ConsentStatus.GRANTED})
        & (Q(**{field("expires_at__isnull"): True}) | Q(**{field("expires_at__gt"): now}))
        & (Q(**{field("notice_version__gte"): purpose.reconsent_from_version}) if purpose.reconsent_from_version
           else Q())
        & (Q(**{field("guardian_consent"): True}) | Q(**{f"{birth_date}__isnull": True})
           | Q(**{f"{birth_date}__lte": born_by(ADULT_AGE, today)}))
    )


def consent_q(purpose: Purpose, now: datetime.datetime | None = None) -> Q:
    """Profiles whose processing for `purpose` is allowed right now, as a Q on Profile.
    Consent-based purposes: a counting grant (unknown = not granted). Other lawful
    bases: allowed unless the person objected (denied or withdrew)."""
    now = now or timezone.now()
    states = ConsentState.objects.filter(profile_id=OuterRef("pk"), purpose=purpose)
    if purpose.needs_consent:
        # The birth date from the outer row: no second read of the profile per state.
        states = states.annotate(customer_birth_date=ExpressionWrapper(OuterRef("birth_date"),
                                                                       output_field=DateField()))
        return Q(Exists(states.filter(_counting_grant(purpose, now, birth_date="customer_birth_date"))))
    return ~Q(Exists(states.exclude(status=ConsentStatus.GRANTED)))


def contactable_q(purpose: Purpose) -> Q:
    """Not on the do-not-contact list for the purpose's channel."""
    if purpose.channel == Channel.NONE:
        return Q()
    return ~Q(Exists(DoNotContact.objects.filter(profile_id=OuterRef("pk"), channel=purpose.channel,
                                                 lifted_at__isnull=True)))


def consent_joined(queryset: QuerySet, purpose: Purpose, now: datetime.datetime | None = None) -> tuple[QuerySet, Q, Q]:
    """consent_q and contactable_q as LEFT JOINs (a customer has at most one state per
    purpose and one active do-not-contact per channel): for reading the flags of many
    customers at once, where a subquery per row would be slow. Returns the queryset
    with the joins and the two conditions on them."""
    now = now or timezone.now()
    state, blocked = f"consent_state_{purpose.pk}", f"do_not_contact_{purpose.channel}"
    queryset = queryset.alias(**{state: FilteredRelation("consent_states", condition=Q(consent_states__purpose=purpose))})
    if purpose.needs_consent:
        consent = _counting_grant(purpose, now, state=state, birth_date="birth_date")
    else:
        consent = Q(**{f"{state}__id__isnull": True}) | Q(**{f"{state}__status": ConsentStatus.GRANTED})
    if purpose.channel == Channel.NONE:
        return queryset, consent, Q()
    queryset = queryset.alias(**{blocked: FilteredRelation("do_not_contact", condition=Q(
        do_not_contact__channel=purpose.channel, do_not_contact__lifted_at__isnull=True))})
    return queryset, consent, Q(**{f"{blocked}__id__isnull": True})


def consenting_profiles(queryset: QuerySet, purpose_code: str, *, now: datetime.datetime | None = None) -> QuerySet:
    """The active profiles of `queryset` that may be processed (exported, served to a
    partner, contacted) for the purpose: consent counts and no do-not-contact on its
    channel. Raises Purpose.DoesNotExist for an unknown code."""
    purpose = Purpose.objects.get(code=purpose_code, is_active=True)
    return queryset.filter(consent_q(purpose, now), contactable_q(purpose), status=ProfileStatus.ACTIVE)


@dataclass(frozen=True)
class PurposeState:
    purpose: Purpose
    state: ConsentState | None
    allowed: bool
    reason: str  # why (not) allowed, for people
    do_not_contact: DoNotContact | None


def consent_states(profile: Profile, now: datetime.datetime | None = None, *,
                   do_not_contact: list[DoNotContact] | None = None) -> list[PurposeState]:
    """For the profile page and the API: every active purpose, whether processing is
    allowed now and why — in two queries (one when the caller passes the customer's
    do-not-contact rows, lifted ones included, that it read already)."""
    now = now or timezone.now()
    if do_not_contact is None:
        do_not_contact = DoNotContact.objects.filter(profile=profile, lifted_at__isnull=True)
    blocks = {d.channel: d for d in do_not_contact if d.lifted_at is None}
    minor = is_minor(profile, timezone.localdate(now))
    rows = []
    # Each purpose with the customer's state of it (at most one: unique per purpose and customer).
    purposes = (Purpose.objects.filter(is_active=True)
                .annotate(own_state=FilteredRelation("states", condition=Q(states__profile=profile)))
                .select_related("own_state").order_by("code"))
    for purpose in purposes:
        state = getattr(purpose, "own_state", None)
        allowed, reason = _explain(purpose, state, now, minor)
        block = blocks.get(purpose.channel) if purpose.channel != Channel.NONE else None
        if allowed and block:
            allowed, reason = False, _("do not contact on this channel (%(reason)s)") % {
                "reason": block.get_reason_display()}
        rows.append(PurposeState(purpose, state, allowed, reason, block))
    return rows


def _explain(purpose: Purpose, state: ConsentState | None, now: datetime.datetime, minor: bool) -> tuple[bool, str]:
    if state is None:
        return (False, _("no consent on record")) if purpose.needs_consent else (True, _("no objection on record"))
    if state.status != ConsentStatus.GRANTED:
        return False, state.get_status_display()
    if state.expires_at and state.expires_at <= now:
        return False, _("expired on %(date)s") % {"date": timezone.localtime(state.expires_at).date()}
    if purpose.reconsent_from_version and (state.notice_version or 0) < purpose.reconsent_from_version:
        return False, _("given under notice v%(old)s; v%(new)s requires re-consent") % {
            "old": state.notice_version or 0, "new": purpose.reconsent_from_version}
    if purpose.needs_consent and minor and not state.guardian_consent:
        return False, _("under 14: needs a guardian's consent")
    return True, _("granted")


def consent_history(profile: Profile, purpose: Purpose | None = None) -> QuerySet:
    """The ledger behind a profile's state, newest first, including the entries of
    profiles merged into it (ledger rows are never moved)."""
    # One query: merges point every profile merged into another at the survivor (the merge
    # service moves the tombstones of the merged one on), so the ledgers are one level deep.
    owners = Profile.objects.filter(Q(pk=profile.pk) | Q(merged_into_id=profile.pk)).values("pk")
    records = ConsentRecord.objects.filter(profile_id__in=owners)
    if purpose is not None:
        records = records.filter(purpose=purpose)
    return records.select_related("purpose").order_by("-captured_at", "-id")


def objecting_profiles(purpose_code: str, profile_ids: set[int]) -> set[int]:
    """Which of these customers refused or withdrew consent for the purpose (their latest say)."""
    if not profile_ids:
        return set()
    return set(ConsentState.objects.filter(
        purpose__code=purpose_code, profile_id__in=profile_ids,
        status__in=[ConsentStatus.DENIED, ConsentStatus.WITHDRAWN]).values_list("profile_id", flat=True))


def current_statuses(profile_ids: list[int]) -> dict[tuple[int, str], str]:
    """{(profile id, purpose code): status} of these customers' current states."""
    return {(profile_id, code): status for profile_id, code, status in ConsentState.objects.filter(
        profile_id__in=profile_ids).values_list("profile_id", "purpose__code", "status")}


def recorded_entries(profile_ids: list[int]) -> set[tuple[int, str, str, datetime.datetime]]:
    """(profile id, purpose code, status, captured at) of every entry of these customers'
    own ledgers."""
    return set(ConsentRecord.objects.filter(profile_id__in=profile_ids).values_list(
        "profile_id", "purpose__code", "status", "captured_at"))


def ledger_profile_ids(profile_id: int) -> list[int]:
    """The profile and every profile merged into it, at any depth."""
    ids, frontier = [profile_id], [profile_id]
    while frontier:
        frontier = list(Profile.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True))
        ids += [pk for pk in frontier if pk not in ids]
    return ids


@dataclass(frozen=True)
class StateDrift:
    """A current state that is not what the ledger says: `missing` (the ledger has an
    entry, there is no state), `unexpected` (a state without a ledger entry behind it, or
    for an erased customer) or `different` (the state is not a copy of the latest entry)."""
    kind: str
    profile_id: int
    purpose_id: int
    state_id: int | None
    record_id: int | None  # the latest ledger entry, the one the state should copy


def consent_state_drift() -> list[StateDrift]:
    """Recompute every active customer's current states from the ledger, set-based (two
    queries, whatever the number of customers), and return where the stored states differ.
    A state is the latest entry (by capture time, then id) of its purpose among the ledgers
    of the customer and the profiles merged into them; erased customers have none. States
    of merged profiles (tombstones) are not read by anything and not checked."""
    from django.db import connection

    profile_table, record_table = Profile._meta.db_table, ConsentRecord._meta.db_table
    state_table = ConsentState._meta.db_table
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    expected = f"""
        WITH RECURSIVE up(descendant, ancestor) AS (
            SELECT DISTINCT profile_id, profile_id FROM {record_table}
            UNION
            SELECT up.descendant, p.merged_into_id FROM up JOIN {profile_table} p ON p.id = up.ancestor
            WHERE p.merged_into_id IS NOT NULL
        ), ranked AS (
            SELECT up.ancestor AS profile_id, r.purpose_id, r.id AS record_id,
                   ROW_NUMBER() OVER (PARTITION BY up.ancestor, r.purpose_id
                                      ORDER BY r.captured_at DESC, r.id DESC) AS n
            FROM up JOIN {record_table} r ON r.profile_id = up.descendant
            JOIN {profile_table} a ON a.id = up.ancestor AND a.status = %s
        ), expected AS (SELECT profile_id, purpose_id, record_id FROM ranked WHERE n = 1)"""
    missing_or_different = f"""{expected}
        SELECT CASE WHEN s.id IS NULL THEN 'missing' ELSE 'different' END, e.profile_id, e.purpose_id, s.id,
               e.record_id
        FROM expected e JOIN {record_table} r ON r.id = e.record_id
        LEFT JOIN {state_table} s ON s.profile_id = e.profile_id AND s.purpose_id = e.purpose_id
        WHERE s.id IS NULL OR s.record_id <> e.record_id OR s.status <> r.status OR s.captured_at <> r.captured_at
           OR s.notice_version {distinct} r.notice_version OR s.expires_at {distinct} r.expires_at
           OR s.guardian_consent <> r.guardian_consent"""
    unexpected = f"""{expected}
        SELECT 'unexpected', s.profile_id, s.purpose_id, s.id, NULL
        FROM {state_table} s JOIN {profile_table} p ON p.id = s.profile_id AND p.status IN (%s, %s)
        WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.profile_id = s.profile_id AND e.purpose_id = s.purpose_id)"""
    drift = []
    with connection.cursor() as cursor:
        cursor.execute(missing_or_different, [ProfileStatus.ACTIVE])
        drift += [StateDrift(*row) for row in cursor.fetchall()]
        cursor.execute(unexpected, [ProfileStatus.ACTIVE, ProfileStatus.ACTIVE, ProfileStatus.ERASED])
        drift += [StateDrift(*row) for row in cursor.fetchall()]
    return sorted(drift, key=lambda d: (d.profile_id, d.purpose_id))


def profile_consent_section(profile: Profile, request):
    """The profile page's consent card: state per purpose with the reason, do-not-contact
    blocks, the latest ledger entries, and the record/withdraw form for staff allowed to."""
    from profiles.selectors import ProfileSection

    do_not_contact = list(DoNotContact.objects.filter(profile=profile).order_by("lifted_at", "-created_at"))
    return ProfileSection("admin/consent/profile_section.html", {
        "consent_rows": consent_states(profile, do_not_contact=do_not_contact),
        "consent_history": list(consent_history(profile)[:50]),
        "do_not_contact": do_not_contact,
        "is_minor": is_minor(profile),
        # Erased and merged customers are read-only: nothing offers to record on them.
        "can_record_consent": request.user.has_perm("consent.add_consentrecord")
        and profile.status == ProfileStatus.ACTIVE,
        "can_add_request": request.user.has_perm("consent.add_datasubjectrequest"),
        "profile_uuid": str(profile.uuid),
        "profile_id": profile.pk,
    })
