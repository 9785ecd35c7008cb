"""What a partner may see of customers (the policy is in the README, Partner API).

Reach — which customers exist for a partner: those it sent itself (cdp.PartnerCustomer:
created or updated through the upsert route, or named in its events) and the members of
segments shared with it. A key with profiles:read_all reaches every customer. Customers
outside the reach answer 404, exactly like customers that do not exist.

Contact data — phone, email and identities: only for customers whose consent for one of
the purposes the partner is registered for (Partner.purposes) counts right now and who
are not on the do-not-contact list of that purpose's channel. Otherwise the phone and
email are blank, `identities` holds only those the partner sent itself, and
`contact_withheld` is true. No scope lifts this rule."""
import uuid as uuid_module
from collections.abc import Iterable

from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from cdp.api.authentication import PartnerClient
from cdp.api.keys import KEY_CACHE_SECONDS
from cdp.models import Partner, PartnerCustomer, Scope
from consent.models import Purpose
from consent.selectors import consent_q, contactable_q
from profiles.models import Profile
from segments.models import SegmentMembership


def reaches_all(client: PartnerClient) -> bool:
    return Scope.PROFILES_READ_ALL in client.scopes


def reach_q(partner: Partner) -> Q:
    """The customers a partner sent or shares a segment of, as a Q on Profile (a merged
    customer's survivor is reached through it)."""
    sent = PartnerCustomer.objects.filter(partner=partner).values("profile_uuid")
    shared = SegmentMembership.objects.filter(profile_id=OuterRef("pk"), segment__shared_with=partner)
    return Q(uuid__in=sent) | Q(merged_profiles__uuid__in=sent) | Q(Exists(shared))


def reachable(client: PartnerClient, queryset: QuerySet) -> QuerySet:
    """`queryset` (of Profile) limited to the partner's reach."""
    if reaches_all(client):
        return queryset
    return queryset.filter(pk__in=Profile.objects.filter(reach_q(client.partner)).values("pk"))


def registered_purposes(partner: Partner) -> list[Purpose]:
    """The active purposes the partner is registered for. Read like the partner's own row
    (cdp.api.keys): cached for KEY_CACHE_SECONDS, so a purpose deactivated in the admin
    stops counting for partners at most that much later."""
    codes = sorted(partner.purposes or [])
    if not codes:
        return []
    cache_key = f"cdp-api-purposes:{','.join(codes)}"
    purposes = cache.get(cache_key)
    if purposes is None:
        purposes = list(Purpose.objects.filter(code__in=codes, is_active=True))
        cache.set(cache_key, purposes, KEY_CACHE_SECONDS)
    return purposes


def contactable(partner: Partner, now=None) -> Q | None:
    """The customers whose contact data the partner may receive, as a Q on Profile; None
    when it may receive nobody's (registered for no active purpose)."""
    purposes = registered_purposes(partner)
    if not purposes:
        return None
    now = now or timezone.now()
    allowed = Q()
    for purpose in purposes:
        allowed |= consent_q(purpose, now) & contactable_q(purpose)
    return allowed


def contactable_when_new(partner: Partner) -> bool:
    """What `contactable` says of a customer created in this very call, without asking
    the database: it has no consent state and no do-not-contact entry yet, so the purposes
    that need consent do not count for it and those that do not need it (allowed unless
    the person objected) do."""
    return any(not purpose.needs_consent for purpose in registered_purposes(partner))


def contactable_ids(partner: Partner, profile_ids: Iterable[int]) -> set[int]:
    """Of these customers, those whose contact data the partner may receive: one query
    (none when the partner is registered for no purpose)."""
    profile_ids = [pk for pk in profile_ids if pk is not None]
    allowed = contactable(partner) if profile_ids else None
    if allowed is None:
        return set()
    return set(Profile.objects.filter(pk__in=profile_ids).filter(allowed).values_list("pk", flat=True))


def customers_sent_rows(partner: Partner, profile_uuids: Iterable) -> list[PartnerCustomer]:
    """Remember that the partner sent these customers: its links to them, unsaved, for
    the call's closing statement (inserted ignoring conflicts: idempotent)."""
    wanted = {value if isinstance(value, uuid_module.UUID) else uuid_module.UUID(str(value))
              for value in profile_uuids if value}
    now = timezone.now()
    return [PartnerCustomer(partner=partner, profile_uuid=value, first_sent_at=now) for value in sorted(wanted)]

