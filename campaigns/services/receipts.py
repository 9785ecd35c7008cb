"""Receipts close the loop: delivered, failed, opened, clicked, unsubscribed, complained.

Each (delivery, kind) is recorded once, however often the vendor repeats it. The
delivery keeps the first time of each; unsubscribed and complained put the customer on
the channel's do-not-contact list at once; delivered, opened, clicked and unsubscribed
become behaviour events, so that segments can ask "clicked campaign X in the last 7 days".
"""
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cdp.actors import Actor
from cdp.observability_metrics import delivery_receipts_record
from consent.models import DoNotContact, DoNotContactReason
from consent.services import do_not_contact_add
from profiles.models import Event, Profile

from ..destinations import ReceiptInput, delivery_id_from_key, delivery_key
from ..models import Delivery, Destination, Receipt

TIMESTAMP = {
    Receipt.Kind.DELIVERED: "delivered_at", Receipt.Kind.OPENED: "opened_at",
    Receipt.Kind.CLICKED: "clicked_at", Receipt.Kind.UNSUBSCRIBED: "unsubscribed_at",
}
EVENT_NAMES = {
    Receipt.Kind.DELIVERED: "campaign_delivered", Receipt.Kind.OPENED: "campaign_open",
    Receipt.Kind.CLICKED: "campaign_click", Receipt.Kind.UNSUBSCRIBED: "campaign_unsubscribe",
}
DO_NOT_CONTACT = {Receipt.Kind.UNSUBSCRIBED: DoNotContactReason.UNSUBSCRIBED,
                  Receipt.Kind.COMPLAINED: DoNotContactReason.COMPLAINT}


@transaction.atomic
def receipts_record(*, destination: Destination | None, receipts: list[ReceiptInput]) -> int:
    """Record receipts (of `destination`'s deliveries; None: any, for our own redirect and
    unsubscribe pages). Unknown keys and kinds are skipped. Returns how many were new."""
    now = timezone.now()
    wanted = {}
    for receipt in receipts:
        delivery_id = delivery_id_from_key(receipt.key)
        if delivery_id is not None and receipt.kind in Receipt.Kind.values:
            wanted.setdefault((delivery_id, receipt.kind), receipt)
    if not wanted:
        return 0
    deliveries = Delivery.objects.filter(pk__in={d for d, _k in wanted}).select_related("campaign", "variant")
    if destination is not None:
        deliveries = deliveries.filter(destination=destination)
    deliveries = {d.pk: d for d in deliveries.exclude(status=Delivery.Status.HOLDOUT)}
    known = set(Receipt.objects.filter(delivery_id__in=deliveries).values_list("delivery_id", "kind"))
    new = [(deliveries[d], kind, receipt) for (d, kind), receipt in wanted.items()
           if d in deliveries and (d, kind) not in known]
    if not new:
        return 0
    Receipt.objects.bulk_create([Receipt(delivery=delivery, kind=kind, occurred_at=receipt.occurred_at or now,
                                         detail=receipt.detail[:300])
                                 for delivery, kind, receipt in new], ignore_conflicts=True)
    delivery_receipts_record((delivery.channel, kind) for delivery, kind, _receipt in new)  # metrics
    changed = set()
    for delivery, kind, receipt in new:
        field = TIMESTAMP.get(kind)
        if field and getattr(delivery, field) is None:
            setattr(delivery, field, receipt.occurred_at or now)
            changed.add(delivery)
        if kind == Receipt.Kind.DELIVERED and delivery.status == Delivery.Status.SENT:
            delivery.status = Delivery.Status.DELIVERED
            changed.add(delivery)
        if kind == Receipt.Kind.FAILED and delivery.status in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
            delivery.status, delivery.error = Delivery.Status.FAILED, receipt.detail[:500]
            changed.add(delivery)
    for delivery in changed:  # receipts come a few at a time
        Delivery.objects.filter(pk=delivery.pk).update(status=delivery.status, error=delivery.error, **{
            field: getattr(delivery, field) for field in TIMESTAMP.values()})
    Event.objects.bulk_create([Event(
        profile_id=delivery.profile_id, name=EVENT_NAMES[kind], occurred_at=receipt.occurred_at or now,
        source="campaigns", external_id=f"{delivery_key(delivery.pk)}:{kind}",
        properties={"campaign": delivery.campaign.name, "campaign_id": delivery.campaign_id,
                    "variant": delivery.variant.label if delivery.variant else "", "channel": delivery.channel},
    ) for delivery, kind, receipt in new if kind in EVENT_NAMES], ignore_conflicts=True)
    _block(new)
    return len(new)


def _block(new) -> None:
    """Unsubscribed or complained: do-not-contact on the delivery's channel, now."""
    wanted = {(delivery.profile_id, delivery.channel): DO_NOT_CONTACT[kind]
              for delivery, kind, _receipt in new if kind in DO_NOT_CONTACT}
    if not wanted:
        return
    blocked = set(DoNotContact.objects.filter(
        Q(*[Q(profile_id=p, channel=c) for p, c in wanted], _connector=Q.OR), lifted_at__isnull=True,
    ).values_list("profile_id", "channel"))
    profiles = Profile.objects.in_bulk({p for p, _c in wanted})
    for (profile_id, channel), reason in wanted.items():
        if (profile_id, channel) not in blocked and profile_id in profiles:
            do_not_contact_add(profile=profiles[profile_id], channel=channel, reason=reason,
                               actor=Actor.system("campaigns"), note="")
