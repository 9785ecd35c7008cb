"""Forms of the campaign admin: the campaign in steps, its variants (templates checked on
save, with the line and token named), the test send, and the coupon pools (upload or
generate their codes)."""
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from consent.models import Purpose

from ..content import TOKENS, ContentError, template_compile
from ..models import Campaign, CouponPool, Variant
from ..services.coupons import MAX_GENERATE, MIN_LENGTH, generate_check
from ..services.lifecycle import cap_is_looser

LABELS = [(label, label) for label in "ABCD"]


def token_help() -> str:
    return gettext("Tokens: %(tokens)s. Also {%% if city %%}…{%% endif %%}.") % {
        "tokens": "；".join(f"{{{{ {name} }}}} {description}" for name, description in TOKENS.items())}


class CampaignForm(forms.ModelForm):
    user = None  # the staff member editing (CampaignAdmin.get_form)

    class Meta:
        model = Campaign
        fields = ("name", "purpose", "destination", "audience_kind", "segment", "trigger_event", "trigger_where",
                  "trigger_unless_event", "trigger_within_minutes", "delay_minutes", "trigger_once_per_days",
                  "schedule", "scheduled_at", "holdout_percent", "cap_messages", "cap_days", "ignore_quiet_hours",
                  "goal_event", "goal_where", "attribution_days")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "purpose" in self.fields:
            self.fields["purpose"].queryset = Purpose.objects.filter(is_active=True)
            self.fields["purpose"].label_from_instance = lambda p: f"{p} · {p.get_channel_display()}"
        if "attribution_days" in self.fields:
            self.fields["attribution_days"].required = False  # empty: the default, 7 days
        if "goal_where" in self.fields:
            self.fields["goal_where"].required = False
        if "holdout_percent" in self.fields and not self.instance.pk:
            self.fields["holdout_percent"].initial = settings.CAMPAIGN_HOLDOUT_PERCENT
        if "cap_messages" in self.fields:
            messages, days = settings.CAMPAIGN_FREQUENCY_CAP
            self.fields["cap_messages"].help_text = gettext(
                "At most this many messages per customer on the channel in the window, across all campaigns. "
                "Empty: the default, %(messages)s per %(days)s days. Stricter is always allowed.") % {
                "messages": messages, "days": days}

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("audience_kind")
        if kind in (Campaign.AudienceKind.SEGMENT, Campaign.AudienceKind.TRIGGER_SEGMENT) and not cleaned.get("segment"):
            self.add_error("segment", gettext("Choose the segment."))
        if kind == Campaign.AudienceKind.TRIGGER_EVENT and not cleaned.get("trigger_event"):
            self.add_error("trigger_event", gettext("Choose the event that starts the campaign."))
        if cleaned.get("schedule") == Campaign.Schedule.AT or cleaned.get("schedule") in (
                Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY):
            at = cleaned.get("scheduled_at")
            if cleaned.get("schedule") == Campaign.Schedule.AT and at is None:
                self.add_error("scheduled_at", gettext("Choose when to send."))
            elif at is not None and at <= timezone.now() and cleaned.get("schedule") == Campaign.Schedule.AT:
                self.add_error("scheduled_at", gettext("Choose a time in the future."))
        if "attribution_days" in self.fields and cleaned.get("attribution_days") is None:
            cleaned["attribution_days"] = Campaign._meta.get_field("attribution_days").default
        if "goal_where" in self.fields and not cleaned.get("goal_where"):
            cleaned["goal_where"] = []
        if cleaned.get("goal_event") or cleaned.get("goal_where"):
            from segments.conditions.parse import parse

            try:
                parse({"event": cleaned.get("goal_event") or "", "where": cleaned.get("goal_where") or []})
            except ValidationError as error:
                self.add_error("goal_event", error.messages)
        messages, days = cleaned.get("cap_messages"), cleaned.get("cap_days")
        if (messages is None) != (days is None):
            self.add_error("cap_days" if days is None else "cap_messages",
                           gettext("Give both the number of messages and the days, or neither (the default)."))
        elif messages is not None:
            probe = Campaign(cap_messages=messages, cap_days=days)
            if cap_is_looser(probe) and not (self.user and self.user.has_perm("campaigns.exceed_frequency_cap")):
                default_messages, default_days = settings.CAMPAIGN_FREQUENCY_CAP
                self.add_error("cap_messages", gettext(
                    "Looser than the default (%(messages)s per %(days)s days): only staff with the permission to "
                    "exceed the frequency cap may set it.") % {"messages": default_messages, "days": default_days})
        return cleaned


class VariantForm(forms.ModelForm):
    label = forms.ChoiceField(label=_("variant"), choices=LABELS, initial="A")
    link_url = forms.URLField(label=Variant._meta.get_field("link_url").verbose_name, required=False,
                              max_length=500, assume_scheme="https",
                              help_text=Variant._meta.get_field("link_url").help_text)

    class Meta:
        model = Variant
        fields = ("label", "weight", "subject", "body", "link_url", "sms_sign_name", "sms_template_code",
                  "wechat_template_id", "coupon_pool")
        widgets = {"body": forms.Textarea(attrs={"rows": 4, "cols": 70, "class": "variant-body"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["body"].help_text = token_help()

    def _template(self, name):
        source = self.cleaned_data.get(name, "")
        try:
            template_compile(source)
        except ContentError as error:
            raise ValidationError(str(error), code="template") from None
        return source

    def clean_subject(self):
        return self._template("subject")

    def clean_body(self):
        return self._template("body")


class VariantFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = [form for form in self.forms if form.has_changed() or form.instance.pk]
        kept = [form for form in kept if hasattr(form, "cleaned_data") and form.cleaned_data
                and not form.cleaned_data.get("DELETE")]
        labels = [form.cleaned_data.get("label") for form in kept]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValidationError(gettext("Each variant needs its own letter; %(labels)s is used twice.")
                                  % {"labels": "、".join(duplicates)})
        total = sum(form.cleaned_data.get("weight") or 0 for form in kept)
        if kept and total != 100:
            raise ValidationError(gettext("The variants' shares add up to %(total)s %%, not 100 %%.")
                                  % {"total": total})


class TrialSendForm(forms.Form):
    variant = forms.ModelChoiceField(label=_("variant"), queryset=Variant.objects.none(), empty_label=None)
    address = forms.CharField(label=_("your own address"), max_length=255, required=False)

    def __init__(self, *args, campaign, channel_label, email=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = campaign.variants.all()
        self.fields["variant"].label_from_instance = lambda v: v.label
        if email is not None:
            self.fields["address"].disabled = True
            self.fields["address"].initial = email
            self.fields["address"].help_text = gettext("Your account's e-mail.")
        else:
            self.fields["address"].help_text = gettext("Your own %(channel)s address (a mobile number for SMS, "
                                                       "your OpenID for WeChat); remembered for this session.") % {
                "channel": channel_label}


class CouponUploadForm(forms.Form):
    file = forms.FileField(label=_("file of codes"), help_text=_(
        "One code per line, or a CSV with a “code” column; UTF-8 or GB18030. Duplicates are refused."))


def _count_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(label=_("number of codes"), min_value=1, max_value=MAX_GENERATE, **kwargs)


def _raise_on_fields(form, error: ValidationError) -> None:
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


class CouponPoolAddForm(forms.ModelForm):
    """A new pool: its codes are uploaded next, or generated now from a prefix, a
    number and a length."""

    count = _count_field(required=False, initial=1000, help_text=_("More can be generated later."))

    class Meta:
        model = CouponPool
        fields = ("name", "source", "prefix", "code_length")
        widgets = {"source": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code_length"].initial = 8
        self.fields["code_length"].help_text = _(
            "How many random characters follow the prefix (at least %(min)s), from 2–9 and A–Z without O, I, L: "
            "no look-alikes to mistype.") % {"min": MIN_LENGTH}
        self.fields["source"].help_text = _("Upload a file of codes from the shop next, or let us generate them.")

    def clean_prefix(self):
        return self.cleaned_data.get("prefix", "").strip().upper()

    def clean(self):
        data = super().clean()
        if data.get("source") == CouponPool.Source.GENERATE:
            if not data.get("count"):
                self.add_error("count", gettext("Say how many codes to generate."))
            if data.get("code_length") is None:
                self.add_error("code_length", gettext("Say how many random characters a code has."))
            if not self.errors:
                try:
                    generate_check(prefix=data.get("prefix", ""), length=data["code_length"], existing=0,
                                   count=data["count"])
                except ValidationError as error:
                    _raise_on_fields(self, error)
        else:
            data["prefix"], data["code_length"] = "", None  # an uploaded pool's codes are the shop's own
        return data


class CouponGenerateForm(forms.Form):
    """More codes for a generated pool (its prefix and length stay)."""

    count = _count_field(initial=1000)

    def __init__(self, *args, pool, existing: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.pool, self.existing = pool, existing

    def clean_count(self):
        count = self.cleaned_data["count"]
        try:
            generate_check(prefix=self.pool.prefix, length=self.pool.code_length, existing=self.existing, count=count)
        except ValidationError as error:
            raise ValidationError([m for messages in error.message_dict.values() for m in messages])
        return count
