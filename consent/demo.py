"""Demo consent: the opt-ins a shop collects (app pop-up, WeChat, sign-up forms, paper
forms in store), with some later withdrawn, so that the dashboard's consented shares,
segment exports by purpose and profile pages have something to show. Written in bulk
like the rest of the demo (consent_record, one customer at a time, would take a minute
for 3,000 customers); the ledger and the current states agree as consent_record keeps
them. Seeded per customer: running it again adds nothing for the same customers."""
from __future__ import annotations

import datetime
import random

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from profiles.models import Profile, ProfileStatus

from .models import Channel, ConsentRecord, ConsentSource, ConsentState, ConsentStatus, Purpose

# purpose → (share of customers who granted it, where, the evidence)
GRANTS = {
    "analytics": (0.72, ConsentSource.WEB_FORM, Channel.NONE, "App 首次启动隐私弹窗"),
    "personalisation": (0.55, ConsentSource.WEB_FORM, Channel.NONE, "App 首次启动隐私弹窗"),
    "app_push": (0.61, ConsentSource.API, Channel.APP_PUSH, "App 系统通知授权"),
    "wechat_marketing": (0.48, ConsentSource.API, Channel.WECHAT, "微信公众号关注并勾选营销消息"),
    "email_marketing": (0.37, ConsentSource.WEB_FORM, Channel.EMAIL, "官网注册页勾选订阅"),
    "sms_marketing": (0.33, ConsentSource.PAPER, Channel.SMS, "门店会员登记表（纸质，已扫描）"),
}
WITHDRAWN_SHARE = 0.08  # of the grants, withdrawn later (退订)


def demo_consent(*, seed: int = 1, now: datetime.datetime | None = None) -> int:
    """Give the active demo customers who have no consent yet their ledger and current
    states; returns the number of ledger entries written (0 when there was nobody)."""
    now = now or timezone.now()
    purposes = {p.code: p for p in Purpose.objects.filter(code__in=GRANTS, is_active=True)}
    notices = dict(Purpose.objects.filter(pk__in=[p.pk for p in purposes.values()])
                   .annotate(latest=Max("notices__version")).values_list("pk", "latest"))
    customers = (Profile.objects.filter(status=ProfileStatus.ACTIVE, consent_records__isnull=True)
                 .order_by("pk").values_list("pk", flat=True))
    ledger: list[ConsentRecord] = []
    for profile_id in customers:
        randomness = random.Random(seed * 1_000_003 + profile_id)  # each customer's own draw, every run
        for code, (share, source, channel, text) in GRANTS.items():
            if code not in purposes or randomness.random() >= share:
                continue
            granted_at = now - datetime.timedelta(days=randomness.uniform(5, 540))
            entries = [(ConsentStatus.GRANTED, granted_at, source, channel, text)]
            if randomness.random() < WITHDRAWN_SHARE:
                withdrawn_at = granted_at + (now - granted_at) * randomness.uniform(0.2, 0.9)
                entries.append((ConsentStatus.WITHDRAWN, withdrawn_at, ConsentSource.API, Channel.SMS,
                                "短信回复 TD 退订"))
            purpose = purposes[code]
            ledger += [ConsentRecord(
                profile_id=profile_id, purpose=purpose, status=status, notice_version=notices[purpose.pk],
                captured_at=captured_at, recorded_at=captured_at, source=entry_source, evidence_channel=entry_channel,
                evidence_text=entry_text, actor_kind="system", actor_label="demo",
            ) for status, captured_at, entry_source, entry_channel, entry_text in entries]
    with transaction.atomic():
        ConsentRecord.objects.bulk_create(ledger, batch_size=2000)
        latest: dict[tuple[int, int], ConsentRecord] = {}
        for entry in ledger:  # in capture order per customer and purpose: the last one wins
            latest[(entry.profile_id, entry.purpose_id)] = entry
        ConsentState.objects.bulk_create([ConsentState(
            profile_id=entry.profile_id, purpose_id=entry.purpose_id, status=entry.status,
            notice_version=entry.notice_version, captured_at=entry.captured_at, record=entry,
        ) for entry in latest.values()], batch_size=2000)
    return len(ledger)
