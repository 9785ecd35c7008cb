"""What campaigns tell the condition language (segments.conditions.campaigns), registered
in CampaignsConfig.ready: which campaign a definition names, and per customer the
messages that were sent, received, opened, clicked, converted, unsubscribed from or held
back — each with the moment it happened, read from the outbox (Delivery) in one query."""
import datetime

from django.core.exceptions import ValidationError
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, When
from django.db.models.functions import Coalesce

from consent.models import Channel
from segments.conditions.campaigns import CampaignSource

from .models import Campaign, Delivery
from .results import TREATED, goal_events

# The moment of each action on a message ("converted": its goal event's, below).
MOMENTS = {"sent": "sent_at", "received": "received_at", "opened": "opened_at", "clicked": "clicked_at",
           "unsubscribed": "unsubscribed_at", "held_out": "created_at"}


def find(ref) -> list[int]:
    """The ids of the campaigns `ref` names: its id (a number, or digits), else its name."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return list(Campaign.objects.filter(pk=int(ref)).values_list("pk", flat=True))
    return list(Campaign.objects.filter(name=ref).values_list("pk", flat=True)) if isinstance(ref, str) else []


def names(ids: list[int]) -> dict[int, str]:
    return dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name"))


def messages(*, action: str, campaign_id: int | None, channel: str, start: datetime.datetime | None,
             end: datetime.datetime | None, without: str, now: datetime.datetime) -> QuerySet:
    # "Received": a delivery receipt came (delivered_at), or the status says so without a time.
    deliveries = Delivery.objects.alias(received_at=Coalesce(
        "delivered_at", Case(When(status=Delivery.Status.DELIVERED, then=F("sent_at")))))
    if campaign_id is not None:
        deliveries = deliveries.filter(campaign_id=campaign_id)
    if channel:
        deliveries = deliveries.filter(channel=channel)
    deliveries = deliveries.filter(_had(action, campaign_id, start, end, now))
    if without:
        deliveries = deliveries.exclude(_had(without, campaign_id, None, None, now))
    return deliveries


def _had(action: str, campaign_id: int | None, start, end, now) -> Q:
    """The messages that had `action`, at a moment in [start, end) when given."""
    if action == "converted":
        return _converted(campaign_id, start, end, now)
    moment = MOMENTS[action]
    had = Q(**{f"{moment}__isnull": False})
    if action == "sent":
        had &= Q(status__in=TREATED)
    elif action == "held_out":
        had &= Q(status=Delivery.Status.HOLDOUT)
    if start is not None:
        had &= Q(**{f"{moment}__gte": start})
    if end is not None:
        had &= Q(**{f"{moment}__lt": end})
    return had


def _converted(campaign_id: int | None, start, end, now) -> Q:
    """A message that was sent and followed, within its campaign's attribution window, by
    its campaign's goal event (as campaigns.results counts conversions), that event falling
    in [start, end). Each campaign has its own goal: one EXISTS per campaign with a goal."""
    campaigns = Campaign.objects.exclude(goal_event="")
    if campaign_id is not None:
        campaigns = campaigns.filter(pk=campaign_id)
    converted = Q(pk__in=[])
    for campaign in campaigns.only("pk", "goal_event", "goal_where", "attribution_days"):
        window = datetime.timedelta(days=campaign.attribution_days)
        try:
            goals = goal_events(campaign, now)
        except ValidationError:  # its conversion event was since unregistered: nothing can count as one
            continue
        goals = goals.filter(profile_id=OuterRef("profile_id"), occurred_at__gt=OuterRef("sent_at"),
                             occurred_at__lte=OuterRef("sent_at") + window)
        if start is not None:
            goals = goals.filter(occurred_at__gte=start)
        if end is not None:
            goals = goals.filter(occurred_at__lt=end)
        converted |= Q(campaign_id=campaign.pk) & Q(Exists(goals))
    return Q(status__in=TREATED, sent_at__isnull=False) & converted


def options() -> list[dict]:
    """The builder's campaign picker: newest first, grouped by channel."""
    channels = dict(Channel.choices)
    return [{"value": pk, "label": name, "group": str(channels.get(channel, channel))}
            for pk, name, channel in Campaign.objects.order_by("-created_at").values_list(
                "pk", "name", "purpose__channel")]


SOURCE = CampaignSource(find=find, names=names, messages=messages, options=options)
