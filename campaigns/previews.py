"""A variant rendered as a customer would get it, for the live preview and the test send:
the tokens of a sample customer of the audience (masked for staff who may not see
personal data), the subject and text, and for SMS the text as the phone shows it with
its length and billable parts."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from django.conf import settings
from django.utils.translation import gettext as _

from profiles.masking import can_see_personal_data

from .content import ContentError, sms_parts, sms_text, template_compile, template_render
from .links import click_url
from .personalise import tokens_for
from .selectors import sample_customer


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    customer: str  # who it was rendered for, as the reader may see it
    length: int = 0  # SMS: characters the phone shows
    parts: int = 0  # SMS: billable segments
    error: str = ""  # a template that does not compile: its line and what is wrong
    error_field: str = ""


def mask_name(name: str) -> str:
    """张伟 → 张*; Zhang Wei → Z***."""
    if not name:
        return ""
    return name[0] + ("*" if any("\u4e00" <= c <= "\u9fff" for c in name) else "***")


def sample_tokens(campaign, *, link_url: str = "", user=None) -> tuple[dict[str, str], str]:
    """The tokens of the campaign's sample customer (a placeholder coupon: codes are single
    use), and how to name that customer to `user`. The name is masked for staff who may
    not see personal data."""
    customer = sample_customer(campaign) if campaign is not None else None
    placeholder = SimpleNamespace(pk=0, profile_id=customer.pk if customer else 0,
                                  variant=SimpleNamespace(link_url=link_url), coupon_code=_("COUPON123"))
    tokens = tokens_for([placeholder]).get(0) if customer else None
    if tokens is None:
        tokens = {"name": settings.CAMPAIGN_NAME_FALLBACK, "city": _("Shanghai"), "tier": "", "top_interest": "", "recommended": "",
                  "coupon": _("COUPON123"), "link": click_url(0) if link_url else "", "unsubscribe": ""}
        return tokens, _("an example customer (the audience has nobody yet)")
    if user is not None and not can_see_personal_data(user):
        tokens["name"] = mask_name(customer.name) if customer.name else tokens["name"]
        return tokens, mask_name(customer.name) or _("customer %(id)s") % {"id": str(customer.uuid)[:8]}
    return tokens, customer.name or _("customer %(id)s") % {"id": str(customer.uuid)[:8]}


def variant_render(*, channel: str, subject: str, body: str, sign_name: str, tokens: dict[str, str],
                   customer: str = "") -> Preview:
    """The message of one variant for these tokens; a template error is returned, not raised."""
    rendered = {}
    for name, source in (("subject", subject), ("body", body)):
        try:
            rendered[name] = template_render(template_compile(source or ""), tokens)
        except ContentError as error:
            return Preview(subject="", text="", customer=customer, error=str(error), error_field=name)
    text = rendered["body"]
    if channel == "sms":
        text = sms_text(text, sign_name)
        return Preview(subject="", text=text, customer=customer, length=len(text), parts=sms_parts(text))
    return Preview(subject=rendered["subject"], text=text, customer=customer)
