"""Draining the outbox: claim a batch of due deliveries, check each customer again at the
last moment, render, hand the batch to the destination, record what happened.

Claiming commits `sending` before anything leaves (FOR UPDATE SKIP LOCKED, so several
workers share a destination). The last-moment check and the send run in one
transaction holding the purpose lock shared: a withdrawal or do-not-contact committed
before it stops the message; one made during it waits until the batch is out.
A worker killed mid-batch leaves its rows `sending`; `deliveries_reclaim` puts them
back with the same idempotency key for destinations that de-duplicate by it, and
dead-letters them (outcome unknown) for those that cannot, so nothing is sent twice.
"""
import datetime
import logging
import random
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import CharField, DateTimeField, Exists, F, OuterRef, Value
from django.db.models.functions import Cast, Concat, JSONObject
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.observability_metrics import deliveries_record
from cdp.sql import constant, insert_from_select
from consent.selectors import consenting_profiles
from consent.services import purpose_lock
from profiles.models import Event, Profile

from ..content import sms_text, template_compile, template_render
from ..destinations import RETRY, SENT, OutgoingMessage, SendResult, adapter_class, adapter_for, delivery_key
from ..models import Campaign, Coupon, Delivery, Destination, Variant
from ..personalise import tokens_for
from ..quiet_hours import quiet_until
from .receipts import receipts_record

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    stopped: int = 0
    postponed: int = 0


def deliveries_claim(*, destination_id: int, limit: int, now: datetime.datetime | None = None) -> list[int]:
    """Mark up to `limit` due deliveries of the destination `sending` and return their ids."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                   .filter(destination_id=destination_id, status=Delivery.Status.QUEUED, not_before__lte=now,
                           campaign__status=Campaign.Status.SENDING)
                   .order_by("not_before", "id").values_list("id", flat=True)[:limit])
        if ids:
            Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.SENDING, claimed_at=now,
                                                       attempts=F("attempts") + 1)
    return ids


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least Retry-After."""
    ceiling = min(settings.CAMPAIGN_RETRY_MAX_SECONDS, settings.CAMPAIGN_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0)


def rate_acquire(destination: Destination, count: int) -> None:
    """Wait until the destination's per-second budget (shared by all workers through the
    cache) has room for `count` messages. A batch larger than the budget goes alone."""
    while True:
        window = int(time.time())
        key = f"campaigns:rate:{destination.pk}:{window}"
        cache.add(key, 0, timeout=5)
        try:
            used = cache.incr(key, count)
        except ValueError:  # expired between add and incr
            continue
        if used <= destination.rate_per_second or used == count:
            return
        cache.decr(key, count)
        time.sleep(max(0.0, window + 1 - time.time()))


def _messages(deliveries: list[Delivery]) -> list[OutgoingMessage]:
    tokens = tokens_for(deliveries)
    templates = {}
    messages = []
    for delivery in deliveries:
        variant = delivery.variant
        if variant.pk not in templates:
            templates[variant.pk] = (template_compile(variant.subject), template_compile(variant.body))
        subject_template, body_template = templates[variant.pk]
        values = tokens.get(delivery.pk, {})
        text = template_render(body_template, values)
        if delivery.channel == "sms":
            text = sms_text(text, variant.sms_sign_name)
        messages.append(OutgoingMessage(
            delivery_id=delivery.pk, key=delivery_key(delivery.pk), address=delivery.address,
            customer=str(delivery.profile_uuid), campaign=delivery.campaign.name, variant=variant.label,
            subject=template_render(subject_template, values) if variant.subject else "", text=text, tokens=values,
            sms_template_code=variant.sms_template_code, sms_sign_name=variant.sms_sign_name,
            wechat_template_id=variant.wechat_template_id, link=values.get("link", ""),
            unsubscribe_url=values.get("unsubscribe", ""),
        ))
    return messages


def _still_allowed(deliveries: list[Delivery], now: datetime.datetime) -> set[int]:
    """Ids of deliveries whose customer may still be contacted, checked now, under the
    purpose locks (taken shared, in purpose order, for the rest of the transaction)."""
    allowed = set()
    by_purpose: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_purpose.setdefault(delivery.campaign.purpose_id, []).append(delivery)
    for purpose_id in sorted(by_purpose):
        group = by_purpose[purpose_id]
        purpose = group[0].campaign.purpose
        purpose_lock(purpose, shared=True)
        ok = set(consenting_profiles(Profile.objects.filter(pk__in={d.profile_id for d in group}), purpose.code,
                                     now=now).values_list("pk", flat=True))
        allowed.update(d.pk for d in group if d.profile_id in ok)
    return allowed


def _claimed(ids: list[int]) -> list[Delivery]:
    """The claimed deliveries with their campaign (and purpose), variant and coupon code,
    the few campaigns and variants read once for the batch."""
    deliveries = list(Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING)
                      .only("campaign_id", "variant_id", "destination_id", "profile_id", "channel", "address",
                            "status", "attempts", "not_before", "claimed_at", "sent_at", "vendor_id", "error")
                      .annotate(profile_uuid=F("profile__uuid")).order_by("pk"))
    campaigns = Campaign.objects.select_related("purpose").in_bulk({d.campaign_id for d in deliveries})
    variants = Variant.objects.in_bulk({d.variant_id for d in deliveries})
    coupons = dict(Coupon.objects.filter(delivery_id__in=ids).values_list("delivery_id", "code"))
    # a customer's code of the campaign from an earlier run goes out again (runs.coupons_assign)
    again = [d for d in deliveries
             if d.pk not in coupons and getattr(variants.get(d.variant_id), "coupon_pool_id", None)]
    held = {(campaign_id, profile_id): code for campaign_id, profile_id, code in Coupon.objects.filter(
        delivery__campaign_id__in={d.campaign_id for d in again}, delivery__profile_id__in={d.profile_id for d in again}
    ).order_by("-pk").values_list("delivery__campaign_id", "delivery__profile_id", "code")} if again else {}
    for delivery in deliveries:
        delivery.campaign, delivery.variant = campaigns[delivery.campaign_id], variants.get(delivery.variant_id)
        delivery.coupon_code = coupons.get(delivery.pk) or held.get((delivery.campaign_id, delivery.profile_id), "")
    return deliveries


def batch_send(*, ids: list[int], now: datetime.datetime | None = None) -> BatchOutcome:
    """Send the claimed deliveries `ids` (all of one destination)."""
    outcome = BatchOutcome()
    now = now or timezone.now()
    with transaction.atomic():
        deliveries = _claimed(ids)
        if not deliveries:
            return outcome
        destination = Destination.objects.get(pk=deliveries[0].destination_id)
        # paused or cancelled since the claim: back to the queue, or stopped
        halted = [d for d in deliveries if d.campaign.status != Campaign.Status.SENDING]
        _requeue([d for d in halted if d.campaign.status == Campaign.Status.PAUSED], now, undo_attempt=True)
        _stop([d for d in halted if d.campaign.status != Campaign.Status.PAUSED], _("The campaign was cancelled."))
        outcome.stopped += sum(1 for d in halted if d.campaign.status != Campaign.Status.PAUSED)
        deliveries = [d for d in deliveries if d.campaign.status == Campaign.Status.SENDING]
        # quiet hours at the moment of sending (a retry may land in them)
        waiting = [d for d in deliveries if not d.campaign.ignore_quiet_hours and quiet_until(d.channel, now)]
        for delivery in waiting:
            delivery.not_before = quiet_until(delivery.channel, now)
        _requeue(waiting, now, undo_attempt=True, keep_not_before=True)
        outcome.postponed += len(waiting)
        deliveries = [d for d in deliveries if d not in waiting]
        allowed = _still_allowed(deliveries, now)
        refused = [d for d in deliveries if d.pk not in allowed]
        _stop(refused, _("Consent no longer counts or the customer may not be contacted on this channel."))
        outcome.stopped += len(refused)
        deliveries = [d for d in deliveries if d.pk in allowed]
        if not deliveries:
            return outcome
        adapter = adapter_for(destination)
        messages, results = _messages(deliveries), []
        for start in range(0, len(messages), destination.batch_size):  # requests of the vendor's size
            request = messages[start:start + destination.batch_size]
            rate_acquire(destination, len(request))
            results += adapter.send_batch(request)
        _apply(deliveries, results, destination, now, outcome)
        if adapter.answered_receipts:
            receipts_record(destination=destination, receipts=adapter.answered_receipts)
    return outcome


def _save(deliveries: list[Delivery], fields: list[str]) -> None:
    """Write `fields` of the deliveries with one UPDATE per distinct set of values (a
    whole batch usually shares them): bulk_update's CASE per row costs more in Python
    than the sending itself."""
    groups: dict[tuple, list[int]] = {}
    for delivery in deliveries:
        groups.setdefault(tuple(getattr(delivery, field) for field in fields), []).append(delivery.pk)
    for values, ids in groups.items():
        Delivery.objects.filter(pk__in=ids).update(**dict(zip(fields, values)))


def _requeue(deliveries: list[Delivery], now, *, undo_attempt: bool = False, keep_not_before: bool = False) -> None:
    for delivery in deliveries:
        delivery.status = Delivery.Status.QUEUED
        delivery.claimed_at = None
        if undo_attempt:
            delivery.attempts = max(0, delivery.attempts - 1)
        if not keep_not_before:
            delivery.not_before = max(delivery.not_before, now)
    _save(deliveries, ["status", "claimed_at", "attempts", "not_before"])


def _stop(deliveries: list[Delivery], reason: str) -> None:
    for delivery in deliveries:
        delivery.status, delivery.error = Delivery.Status.STOPPED, reason[:500]
    _save(deliveries, ["status", "error"])


def _apply(deliveries: list[Delivery], results: list[SendResult], destination: Destination, now, outcome) -> None:
    by_id = {result.delivery_id: result for result in results}
    sent = []
    for delivery in deliveries:
        result = by_id.get(delivery.pk) or SendResult(delivery.pk, RETRY, error=_("No answer for this message."))
        if result.outcome == SENT:
            delivery.status, delivery.sent_at, delivery.vendor_id, delivery.error = (
                Delivery.Status.SENT, now, result.vendor_id[:100], "")
            sent.append(delivery)
            outcome.sent += 1
        elif result.outcome == RETRY and delivery.attempts < destination.max_attempts:
            delivery.status, delivery.error, delivery.claimed_at = Delivery.Status.QUEUED, result.error[:500], None
            due = now + datetime.timedelta(seconds=backoff_seconds(delivery.attempts, result.retry_after))
            delivery.not_before = due if delivery.campaign.ignore_quiet_hours else (
                quiet_until(delivery.channel, due) or due)
            outcome.retried += 1
        else:
            delivery.status, delivery.error = Delivery.Status.DEAD, (result.error or _("Refused."))[:500]
            outcome.dead += 1
    _save(deliveries, ["status", "sent_at", "vendor_id", "error", "claimed_at", "not_before"])
    deliveries_record(deliveries)  # metrics: sent, retry or dead, per channel
    if sent:
        sent_events_write([d.pk for d in sent], now)


def sent_events_write(ids: list[int], now: datetime.datetime) -> int:
    """A `campaign_sent` event per delivery on the customer's timeline, in one INSERT …
    SELECT (its external id is the delivery's key: a delivery sent again adds none)."""
    rows = Delivery.objects.filter(pk__in=ids).values(
        e_profile=F("profile_id"), e_name=constant("campaign_sent", CharField()),
        e_at=constant(now, DateTimeField()), e_source=constant("campaigns", CharField()),
        e_external=Concat(Value("cdp-"), Cast("id", CharField()), Value(":sent"), output_field=CharField()),
        e_properties=JSONObject(campaign=F("campaign__name"), campaign_id=F("campaign_id"),
                                variant=F("variant__label"), channel=F("channel")),
    )
    return insert_from_select(Event, {
        "profile_id": "e_profile", "name": "e_name", "occurred_at": "e_at", "received_at": "e_at",
        "source": "e_source", "external_id": "e_external", "properties": "e_properties",
    }, rows, ignore_conflicts=True)


def destination_drain(*, destination_id: int, budget_seconds: float = 50) -> BatchOutcome:
    """Send due deliveries of one destination in batches until none are due or the time
    budget is spent. Several workers may drain one destination at once."""
    total = BatchOutcome()
    deadline = time.monotonic() + budget_seconds
    destination = Destination.objects.get(pk=destination_id)
    while time.monotonic() < deadline:
        # Several requests' worth at a time: the reads and writes around the sending cost
        # per claim, not per message (the requests still carry batch_size each).
        ids = deliveries_claim(destination_id=destination_id,
                               limit=destination.batch_size * settings.CAMPAIGN_REQUESTS_PER_CLAIM)
        if not ids:
            break
        outcome = batch_send(ids=ids)
        for field in ("sent", "retried", "dead", "stopped", "postponed"):
            setattr(total, field, getattr(total, field) + getattr(outcome, field))
    return total


def deliveries_reclaim(*, now: datetime.datetime | None = None) -> int:
    """Deliveries left `sending` by a worker that died: back to the queue with their
    idempotency key where the destination de-duplicates by it, else dead-lettered
    (the outcome is unknown: staff decide to re-send)."""
    now = now or timezone.now()
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING,
                                    claimed_at__lt=now - datetime.timedelta(seconds=settings.CAMPAIGN_SENDING_STALE_SECONDS))
    kinds = set(stale.values_list("destination__kind", flat=True).distinct())
    idempotent = [kind for kind in kinds if adapter_class(kind).idempotent]
    back = stale.filter(destination__kind__in=idempotent).update(status=Delivery.Status.QUEUED, claimed_at=None)
    lost = stale.exclude(destination__kind__in=idempotent).update(
        status=Delivery.Status.DEAD, error=_("The worker stopped while sending; whether it arrived is unknown."))
    return back + lost


def due_destinations(now: datetime.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(Delivery.objects.filter(status=Delivery.Status.QUEUED, not_before__lte=now,
                                        campaign__status=Campaign.Status.SENDING)
                .values_list("destination_id", flat=True).distinct())


def dead_letters_resend(*, campaign: Campaign, actor: Actor) -> int:
    """Put a campaign's dead letters back in the queue (a fresh set of attempts)."""
    with transaction.atomic():
        count = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.DEAD).update(
            status=Delivery.Status.QUEUED, attempts=0, not_before=timezone.now(), claimed_at=None, error="")
        audit_record(actor=actor, action="campaign_resent", target=f"campaign:{campaign.pk}", count=count,
                     details={"campaign": campaign.name, "deliveries": count})
    return count


def campaigns_finish(now: datetime.datetime | None = None) -> int:
    """Segment campaigns whose every delivery has left (or stopped) are finished."""
    now = now or timezone.now()
    open_deliveries = Delivery.objects.filter(campaign_id=OuterRef("pk"),
                                              status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])
    done = Campaign.objects.filter(status=Campaign.Status.SENDING, audience_kind=Campaign.AudienceKind.SEGMENT,
                                   next_run_at__isnull=True).exclude(Exists(open_deliveries))
    return done.update(status=Campaign.Status.FINISHED, finished_at=now)

