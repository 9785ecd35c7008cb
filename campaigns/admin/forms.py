"""Forms of the campaign admin: the campaign in steps, its variants (templates checked on
save, with the line and token named), the test send and the coupon upload."""
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from consent.models import Purpose

from ..content import TOKENS, ContentError, template_compile
from ..models import Campaign, Variant
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
