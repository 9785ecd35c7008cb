"""Channels and destinations (渠道与目的地): explicit settings per kind, the secret
write-only (the change history names the field, as for any field, never a value), and a
connection test recorded on the destination."""
import copy
import secrets

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..links import public_url
from ..models import Destination
from ..services.destinations import destination_test

K = Destination.Kind
# The settings of each kind (the keys its adapter in campaigns/destinations reads): config
# key → form field. Keys not listed here are kept as they are when the form is saved.
CONFIG_FIELDS = {
    K.WEBHOOK: {
        "url": forms.URLField(label=_("webhook URL"), max_length=500, assume_scheme="https",
                              widget=forms.URLInput(attrs={"class": "vURLField"}),
                              help_text=_("Batches of messages are POSTed here as JSON, signed with the secret "
                                          "(X-CDP-Signature).")),
    },
    K.EMAIL: {
        "backend": forms.ChoiceField(label=_("send through"), required=False, choices=[
            ("", _("this SMTP server")), ("settings", _("the system's e-mail settings (EMAIL_BACKEND)"))]),
        "host": forms.CharField(label=_("SMTP server"), max_length=200, required=False,
                                help_text=_("e.g. smtpdm.aliyun.com")),
        "port": forms.IntegerField(label=_("SMTP port"), min_value=1, max_value=65535, required=False,
                                   help_text=_("Empty: 465 with SSL, else 25.")),
        "username": forms.CharField(label=_("SMTP user"), max_length=200, required=False,
                                    help_text=_("The SMTP password goes in the secret field below.")),
        "use_ssl": forms.BooleanField(label=_("SSL (port 465)"), required=False),
        "use_tls": forms.BooleanField(label=_("STARTTLS (port 587)"), required=False),
        "from_address": forms.EmailField(label=_("sender address"), required=False,
                                         help_text=_("The From address, e.g. news@brand.cn. Empty: the system's "
                                                     "default sender.")),
        "from_name": forms.CharField(label=_("sender name"), max_length=100, required=False),
    },
    K.ALIYUN_SMS: {
        "access_key_id": forms.CharField(label=_("AccessKey ID"), max_length=100,
                                         help_text=_("The AccessKey secret goes in the secret field below.")),
        "endpoint": forms.CharField(label=_("API endpoint"), max_length=200, required=False,
                                    help_text=_("Empty: Alibaba Cloud's SMS endpoint; change it only for testing.")),
        "receipt_token": forms.CharField(label=_("receipt token"), max_length=100, required=False,
                                         help_text=_("Alibaba Cloud does not sign its delivery reports: the report "
                                                     "URL carries this token. Empty: one is made when saved.")),
        "params": forms.JSONField(label=_("template parameters"), required=False,
                                  help_text=_('The tokens the approved template takes, e.g. ["name", "coupon"]. '
                                              "Empty: all tokens.")),
    },
    K.WECHAT: {
        "appid": forms.CharField(label=_("AppID"), max_length=64,
                                 help_text=_("The official account's AppID; its AppSecret goes in the secret field.")),
        "api_base": forms.URLField(label=_("API address"), max_length=200, required=False, assume_scheme="https",
                                   help_text=_("Empty: https://api.weixin.qq.com/cgi-bin/")),
        "fields": forms.JSONField(label=_("template keywords"), required=False,
                                  help_text=_('Template keyword → token, e.g. {"thing1": "name", "thing2": "coupon"}; '
                                              '"text" is the whole message. Empty: each token is a keyword of its '
                                              "own name.")),
        "server_token": forms.CharField(label=_("server token"), max_length=100, required=False,
                                        help_text=_("The token of the account's server configuration, to check the "
                                                    "delivery reports WeChat pushes.")),
    },
    K.AUDIENCE_FILE: {
        "storage": forms.ChoiceField(label=_("where"), choices=[("folder", _("a folder on the server")),
                                                                ("s3", _("an S3-compatible bucket"))]),
        "path": forms.CharField(label=_("folder"), max_length=300, required=False),
        "bucket": forms.CharField(label=_("bucket"), max_length=100, required=False),
        "prefix": forms.CharField(label=_("key prefix"), max_length=200, required=False),
        "endpoint_url": forms.URLField(label=_("S3 endpoint"), max_length=300, required=False,
                                       assume_scheme="https", help_text=_("e.g. https://oss-cn-shanghai.aliyuncs.com")),
        "region": forms.CharField(label=_("region"), max_length=50, required=False),
        "access_key_id": forms.CharField(label=_("access key id"), max_length=100, required=False,
                                         help_text=_("The secret access key goes in the secret field below.")),
        "hash": forms.BooleanField(label=_("hash phones and e-mails (SHA-256)"), required=False,
                                   help_text=_("The format ad platforms take for custom audiences.")),
        "phone_format": forms.ChoiceField(label=_("phone format"), required=False, choices=[
            ("e164", _("+8613800138000 (Google Customer Match)")),
            ("digits", _("8613800138000 (Meta custom audiences)")),
            ("national", _("13800138000 (Tencent Ads, Ocean Engine)"))]),
    },
}


def config_field_name(kind: str, key: str) -> str:
    return f"config_{kind}_{key}"


class DestinationForm(forms.ModelForm):
    new_secret = forms.CharField(
        label=_("secret"), required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("API key, signing secret or password. Never shown again: leave blank to keep the one saved."))

    class Meta:
        model = Destination
        fields = ("name", "kind", "is_active", "rate_per_second", "batch_size", "max_attempts", "cost_per_message")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        for kind, fields in CONFIG_FIELDS.items():
            for key, field in fields.items():
                field_copy = copy.deepcopy(field)
                field_copy.required = False  # required for the chosen kind only (clean)
                field_copy.widget.attrs["data-destination-kind"] = kind
                if self.instance.kind == kind and key in config:
                    field_copy.initial = config[key]
                self.fields[config_field_name(kind, key)] = field_copy
        if self.instance.pk and self.instance.secret:
            self.fields["new_secret"].help_text = _("A secret is saved. Never shown again: leave blank to keep it, "
                                                    "or type a new one to replace it.")

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        for key, field in CONFIG_FIELDS.get(kind, {}).items():
            name = config_field_name(kind, key)
            if field.required and cleaned.get(name) in (None, ""):
                self.add_error(name, forms.Field.default_error_messages["required"])
        if kind == K.AUDIENCE_FILE:
            storage = cleaned.get(config_field_name(kind, "storage"))
            if storage == "s3" and not cleaned.get(config_field_name(kind, "bucket")):
                self.add_error(config_field_name(kind, "bucket"), _("An S3 destination needs its bucket."))
            if storage == "folder" and not cleaned.get(config_field_name(kind, "path")):
                self.add_error(config_field_name(kind, "path"), _("Name the folder the files go to."))
        if kind == K.EMAIL and cleaned.get(config_field_name(kind, "backend")) != "settings" \
                and not cleaned.get(config_field_name(kind, "host")):
            self.add_error(config_field_name(kind, "host"), _("Name the SMTP server, or send through the system's "
                                                              "e-mail settings."))
        if kind and not self.instance.secret and not cleaned.get("new_secret") and kind in (
                K.WEBHOOK, K.ALIYUN_SMS, K.WECHAT):
            self.add_error("new_secret", _("This kind of destination needs its secret."))
        return cleaned

    def save(self, commit=True):
        destination = super().save(commit=False)
        kind = destination.kind
        known = {key for fields in CONFIG_FIELDS.values() for key in fields}
        config = {k: v for k, v in (destination.config or {}).items() if k not in known}
        for key in CONFIG_FIELDS.get(kind, {}):
            value = self.cleaned_data.get(config_field_name(kind, key))
            if value not in (None, "", [], {}):
                config[key] = value
        if kind == K.ALIYUN_SMS and not config.get("receipt_token"):
            config["receipt_token"] = secrets.token_urlsafe(24)
        destination.config = config
        if self.cleaned_data.get("new_secret"):
            destination.secret = self.cleaned_data["new_secret"]
        if commit:
            destination.save()
        return destination


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = ("name", "kind", "is_active", "rate_per_second", "batch_size", "last_test_at", "last_test_result")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    readonly_fields = ("connection_test", "settings_shown", "receipt_address")
    change_form_template = "admin/campaigns/destination/change_form.html"

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):  # read-only: the settings it has
            return [(None, {"fields": ["name", "kind", "is_active", "settings_shown"]}),
                    (_("sending"), {"fields": ["rate_per_second", "batch_size", "max_attempts", "cost_per_message"]}),
                    (_("connection"), {"fields": ["connection_test"]})]
        fieldsets = [
            (None, {"fields": ["name", "kind", "is_active"]}),
            *[(Destination.Kind(kind).label, {
                "fields": [config_field_name(kind, key) for key in fields],
                "classes": ["destination-settings"], "description": "",
            }) for kind, fields in CONFIG_FIELDS.items()],
            (_("secret"), {"fields": ["new_secret"]}),
            (_("sending"), {"fields": ["rate_per_second", "batch_size", "max_attempts", "cost_per_message"]}),
        ]
        if obj is not None:
            fieldsets.append((_("connection"), {"fields": ["connection_test", "receipt_address"]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["fields"] = list(DestinationForm.Meta.fields)  # the config fields are the form's own, not the model's
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=_("receipt address"))
    def receipt_address(self, obj):
        """Where the vendor posts delivery reports (and opens, clicks, unsubscribes)."""
        if obj is None or obj.pk is None or obj.kind == K.AUDIENCE_FILE:
            return "—"
        url = public_url(reverse("campaigns:receipts", args=[obj.pk]))
        if obj.kind == K.ALIYUN_SMS:
            url += "?token=" + str((obj.config or {}).get("receipt_token", ""))
        notes = {K.WEBHOOK: _("Signed with the secret, like the batches we send."),
                 K.ALIYUN_SMS: _("Enter it as the report URL (回执地址) in the Alibaba Cloud SMS console."),
                 K.WECHAT: _("Forward the account's TEMPLATESENDJOBFINISH events here with their query string."),
                 K.EMAIL: _("For an e-mail service that posts events; unsubscribes come through our own link.")}
        return format_html('<code id="receipt-url">{}</code><div class="help">{}</div>', url, notes.get(obj.kind, ""))

    @admin.display(description=_("settings"))
    def settings_shown(self, obj):
        """The destination's settings by their labels (never the secret)."""
        fields = CONFIG_FIELDS.get(obj.kind, {})
        rows = [(fields[key].label, value) for key, value in (obj.config or {}).items() if key in fields]
        return format_html_join("", "<div>{}：{}</div>", rows) if rows else "—"

    @admin.display(description=_("connection test"))
    def connection_test(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        last = (format_html("{}（{}）", obj.last_test_result,
                            timezone.localtime(obj.last_test_at).strftime("%Y-%m-%d %H:%M"))
                if obj.last_test_at else gettext("Never tested."))
        return format_html('<span id="last-test">{}</span>', last)

    def get_urls(self):
        return [path("<int:destination_id>/test/", self.admin_site.admin_view(self.test_view),
                     name="campaigns_destination_test"), *super().get_urls()]

    def test_view(self, request, destination_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        destination = get_object_or_404(Destination, pk=destination_id)
        if not self.has_change_permission(request, destination):
            raise PermissionDenied
        ok, result = destination_test(destination=destination)
        self.message_user(request, result, messages.SUCCESS if ok else messages.ERROR)
        return HttpResponseRedirect(reverse("admin:campaigns_destination_change", args=[destination.pk]))
