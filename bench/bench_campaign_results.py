"""Campaign results on the demo dataset (run by bench/run.py: `--only campaign_results`):
a finished campaign with 500,000 recipients (every second customer; 10 % of them held
out), sent 7 days before the newest order, goal "order" with a 7-day window; the time of
its whole result (both queries and the statistics) against the target of 2 s. The
campaign is built once with INSERT … SELECT and reused."""
from __future__ import annotations

import datetime
import time

from common import Row, at_most

NAME = "bench: results"
RECIPIENTS = 500_000


def fixture():
    from django.db import connection
    from django.db.models import Max

    from campaigns.models import Campaign, CampaignRun, Destination, Variant
    from consent.models import Purpose
    from profiles.models import Event

    campaign = Campaign.objects.filter(name=NAME).first()
    if campaign is not None:
        return campaign
    newest = Event.objects.filter(name="order").aggregate(at=Max("occurred_at"))["at"]
    send = newest - datetime.timedelta(days=7)
    destination = Destination.objects.create(name="bench: results", kind="webhook", config={"url": "http://x"},
                                             cost_per_message="0.05")
    campaign = Campaign.objects.create(name=NAME, purpose=Purpose.objects.get(code="sms_marketing"),
                                       destination=destination, audience_kind="trigger_event", trigger_event="order",
                                       status=Campaign.Status.FINISHED, launched_at=send, finished_at=send,
                                       goal_event="order", attribution_days=7, holdout_percent=10)
    variant = Variant.objects.create(campaign=campaign, label="A", body="bench")
    run = CampaignRun.objects.create(campaign=campaign, started_at=send)
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO campaigns_delivery (run_id, campaign_id, variant_id, destination_id, profile_id, channel,
                address, status, created_at, not_before, sent_at, attempts, vendor_id, error)
            SELECT %s, %s, %s, %s, id, 'sms', '', CASE WHEN id %% 20 = 0 THEN 'holdout' ELSE 'delivered' END,
                   %s, %s, CASE WHEN id %% 20 = 0 THEN NULL ELSE %s::timestamptz END, 1, '', ''
            FROM profiles_profile WHERE id %% 2 = 0 ORDER BY id LIMIT %s""",
                       [run.pk, campaign.pk, variant.pk, destination.pk, send, send, send, RECIPIENTS])
        cursor.execute("ANALYZE campaigns_delivery")
    return campaign


def bench_campaign_results(ctx) -> list[Row]:
    from campaigns.results import result_compute

    campaign = fixture()
    result_compute(campaign)  # warm the cache, as a recompute on the tick finds it
    started = time.monotonic()
    data = result_compute(campaign)
    seconds = time.monotonic() - started
    return [
        Row("campaign_results recipients", data["treated"]["n"] + data["holdout"]["n"], "rows"),
        Row("campaign_results conversions (treated)", data["treated"]["converted"], "customers"),
        at_most("campaign_results compute (500k, 7-day window)", seconds, "s", 2),
    ]
