"""Reads of the campaigns app for the staff pages and the command: a campaign's progress
by delivery status, its results per variant, its dead letters, the audience's sample
customer for previews. Each is one query (or a fixed few), whatever the campaign's size."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.utils import timezone

from profiles.models import Profile

from .eligibility import audience, eligible
from .models import Campaign, Delivery, Variant

# Statuses in the order a message goes through them (the progress bar's order).
PROGRESS_ORDER = [Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT, Delivery.Status.DELIVERED,
                  Delivery.Status.FAILED, Delivery.Status.DEAD, Delivery.Status.STOPPED, Delivery.Status.HOLDOUT]
# Statuses of a message that has left (or will not leave any more): what "done" counts.
LEFT = {Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.FAILED, Delivery.Status.DEAD,
        Delivery.Status.STOPPED}


@dataclass
class Progress:
    counts: dict[str, int]

    @property
    def to_send(self) -> int:
        """Messages decided for sending (the holdout excluded)."""
        return sum(n for status, n in self.counts.items() if status != Delivery.Status.HOLDOUT)

    @property
    def done(self) -> int:
        return sum(n for status, n in self.counts.items() if status in LEFT)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.to_send) if self.to_send else 0

    def rows(self) -> list[tuple[str, str, int]]:
        labels = dict(Delivery.Status.choices)
        return [(status, str(labels[status]), self.counts.get(status, 0)) for status in PROGRESS_ORDER]


def campaign_progress(campaign: Campaign) -> Progress:
    """Deliveries of the campaign (all runs) by status, one GROUP BY on the campaign's index."""
    counts = dict(Delivery.objects.filter(campaign=campaign).order_by().values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    return Progress({status: counts.get(status, 0) for status in PROGRESS_ORDER})


def campaigns_progress(campaign_ids) -> dict[int, Progress]:
    """Progress of several campaigns in one query (the list page)."""
    found: dict[int, dict[str, int]] = {}
    for campaign_id, status, n in (Delivery.objects.filter(campaign_id__in=list(campaign_ids)).order_by()
                                   .values_list("campaign_id", "status").annotate(n=Count("id"))
                                   .values_list("campaign_id", "status", "n")):
        found.setdefault(campaign_id, {})[status] = n
    return {campaign_id: Progress(counts) for campaign_id, counts in found.items()}


@dataclass
class ResultRow:
    label: str  # the variant ("A"…), or "" for the whole campaign
    recipients: int = 0  # messages that left (sent, and what came of it)
    delivered: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    holdout: int = 0

    def rate(self, numerator: int) -> str:
        return f"{100 * numerator / self.recipients:.1f} %" if self.recipients else "—"

    @property
    def delivered_rate(self) -> str:
        return self.rate(self.delivered)

    @property
    def opened_rate(self) -> str:
        return self.rate(self.opened)

    @property
    def clicked_rate(self) -> str:
        return self.rate(self.clicked)

    @property
    def unsubscribed_rate(self) -> str:
        return self.rate(self.unsubscribed)


@dataclass
class Results:
    total: ResultRow
    variants: list[ResultRow] = field(default_factory=list)


RESULT_COUNTS = {
    "recipients": Count("id", filter=Q(sent_at__isnull=False)),
    "delivered": Count("id", filter=Q(delivered_at__isnull=False)),
    "failed": Count("id", filter=Q(status__in=[Delivery.Status.FAILED, Delivery.Status.DEAD])),
    "opened": Count("id", filter=Q(opened_at__isnull=False)),
    "clicked": Count("id", filter=Q(clicked_at__isnull=False)),
    "unsubscribed": Count("id", filter=Q(unsubscribed_at__isnull=False)),
    "holdout": Count("id", filter=Q(status=Delivery.Status.HOLDOUT)),
}


def campaign_results(campaign: Campaign) -> Results:
    """Recipients, delivered, failed, opened, clicked, unsubscribed and the holdout's size,
    for the campaign and per variant, in two queries."""
    labels = dict(Variant.objects.filter(campaign=campaign).values_list("pk", "label"))
    rows = (Delivery.objects.filter(campaign=campaign).order_by().values("variant_id")
            .annotate(**RESULT_COUNTS))
    total = ResultRow(label="")
    variants = []
    for row in rows:
        variant_id = row.pop("variant_id")
        variants.append(ResultRow(label=labels.get(variant_id, "?"), **row))
        for name, value in row.items():
            setattr(total, name, getattr(total, name) + value)
    variants.sort(key=lambda r: r.label)
    return Results(total=total, variants=variants)


def dead_letters(campaign: Campaign, limit: int = 50) -> tuple[int, list[Delivery]]:
    """How many of the campaign's messages are dead letters, and the newest `limit` of
    them with their error and customer."""
    dead = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.DEAD)
    count = dead.count()
    rows = list(dead.select_related("variant").order_by("-pk")[:limit]) if count else []
    profiles = Profile.objects.in_bulk({d.profile_id for d in rows})
    for row in rows:
        row.customer = profiles.get(row.profile_id)
    return count, rows


def sample_customer(campaign: Campaign, now: datetime.datetime | None = None) -> Profile | None:
    """A customer the campaign would message (else any member of its audience), for the
    preview: the same one each time, so that staff compare variants on one person."""
    if campaign.segment_id is None or campaign.purpose_id is None:
        return None
    now = now or timezone.now()
    return (eligible(campaign, now).order_by("pk").first() or audience(campaign).order_by("pk").first())
