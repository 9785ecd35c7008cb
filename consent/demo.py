"""Demo consent: the opt-ins a shop collects (app pop-up, WeChat, sign-up and paper forms),
some withdrawn later, as a CRM exports them, brought in through the consent import, so
that the demo also shows an import with its report and the customers' timelines."""
from __future__ import annotations

import csv
import datetime
import os
import random
import tempfile
import time
from collections.abc import Callable

from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import ImportKind, Profile, ProfileStatus

FILE_NAME = "crm-consent-export.csv"
# purpose → (share of customers who granted it, the evidence)
GRANTS = {
    "analytics": (0.72, "App 首次启动隐私弹窗"),
    "personalisation": (0.55, "App 首次启动隐私弹窗"),
    "app_push": (0.61, "App 系统通知授权"),
    "wechat_marketing": (0.48, "微信公众号关注并勾选营销消息"),
    "email_marketing": (0.37, "官网注册页勾选订阅"),
    "sms_marketing": (0.33, "门店会员登记表（纸质，已扫描）"),
}
WITHDRAWN_SHARE = 0.08  # of the grants, withdrawn later (退订)
PROGRESS_EVERY_SECONDS = 5.0  # how often a long run says how far it got


def demo_consent(*, seed: int = 1, now: datetime.datetime | None = None,
                 progress: Callable[[str], None] | None = None) -> int:
    """Import consent for the active demo customers with a phone and no consent yet;
    returns the number of ledger entries written. Each customer draws from their own
    seeded generator, so running it again adds nothing for the same customers.
    `progress` is told how far it got, every few seconds (a long step at 200,000 customers)."""
    now = now or timezone.now()
    report = _Throttled(progress)
    customers = (Profile.objects.filter(status=ProfileStatus.ACTIVE, consent_records__isnull=True).exclude(phone="")
                 .order_by("pk").values_list("pk", "phone"))
    handle, path = tempfile.mkstemp(prefix="cdp-demo-consent-", suffix=".csv")
    rows = 0
    try:
        total = customers.count() if progress else 0
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["手机号", "用途", "同意状态", "同意时间", "凭证"])
            for done, (profile_id, phone) in enumerate(customers, start=1):
                report(lambda: _("Consent: drawn for %(done)s of %(total)s customers…") % {"done": done, "total": total})
                randomness = random.Random(seed * 1_000_003 + profile_id)
                for purpose, (share, evidence) in GRANTS.items():
                    if randomness.random() >= share:
                        continue
                    granted_at = now - datetime.timedelta(days=randomness.uniform(5, 540))
                    writer.writerow([phone, purpose, "同意", _local(granted_at), evidence])
                    rows += 1
                    if randomness.random() < WITHDRAWN_SHARE:
                        withdrawn_at = granted_at + (now - granted_at) * randomness.uniform(0.2, 0.9)
                        writer.writerow([phone, purpose, "撤回", _local(withdrawn_at), "短信回复 TD 退订"])
                        rows += 1
        if not rows:
            return 0
        job, _table = import_job_create(path=path, name=FILE_NAME, kind=ImportKind.CONSENT,
                                        actor=Actor.system("demo"), source="demo-crm")
        report.now(_("Consent: importing %(rows)s ledger entries…") % {"rows": rows})
        imported = import_run(job, on_progress=lambda running: report(
            lambda: _("Consent: %(percent)s%% imported…") % {"percent": int(running.progress * 100)})).created
        report.now(_("Consent: %(rows)s ledger entries recorded.") % {"rows": imported})
        return imported
    finally:
        if os.path.exists(path):
            os.remove(path)


class _Throttled:
    """Passes a message on at most every `every` seconds; the message is only made when passed."""

    def __init__(self, progress: Callable[[str], None] | None, every: float | None = None):
        self.progress, self.last = progress, time.monotonic()
        self.every = PROGRESS_EVERY_SECONDS if every is None else every

    def __call__(self, message: Callable[[], str]) -> None:
        if self.progress is not None and time.monotonic() - self.last >= self.every:
            self.now(message())

    def now(self, message: str) -> None:
        if self.progress is not None:
            self.last = time.monotonic()
            self.progress(message)


def _local(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
