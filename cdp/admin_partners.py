"""Admin for partners and their API keys. A key is shown once, right after it is made;
keys are revoked, never deleted (the audit log refers to their prefix)."""
from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .api.keys import api_key_assign, api_key_revoke
from .models import Partner, PartnerAPIKey, Scope


class PartnerAPIKeyInline(admin.TabularInline):
    model = PartnerAPIKey
    fields = ("name", "prefix", "scopes", "expires_at", "revoked_at", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # keys are made on their own page, where the key is shown once


class PartnerForm(forms.ModelForm):
    purposes = forms.MultipleChoiceField(
        label=_("registered purposes"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=Partner._meta.get_field("purposes").help_text)

    class Meta:
        model = Partner
        fields = ("name", "code", "contact", "is_active", "requests_per_minute", "purposes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from consent.models import Purpose  # the admin is a face: it may read any app

        self.fields["purposes"].choices = [(p.code, f"{p.name} ({p.code})")
                                           for p in Purpose.objects.filter(is_active=True).order_by("code")]


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    form = PartnerForm
    list_display = ("name", "code", "contact", "is_active", "key_count", "requests_per_minute", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "code", "contact")
    inlines = [PartnerAPIKeyInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(key_count=Count("api_keys"))

    @admin.display(description=_("API keys"), ordering="key_count")
    def key_count(self, partner):
        return partner.key_count


class PartnerAPIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = PartnerAPIKey
        fields = ("partner", "name", "scopes", "expires_at")


@admin.register(PartnerAPIKey)
class PartnerAPIKeyAdmin(admin.ModelAdmin):
    form = PartnerAPIKeyForm
    list_display = ("name", "partner", "prefix", "scope_list", "expires_at", "state", "created_at")
    list_filter = ("partner", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("partner",)
    search_fields = ("name", "prefix", "partner__name")
    readonly_fields = ("prefix", "revoked_at", "created_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_revoked:
            return ("partner", "name", "scopes", "expires_at", *self.readonly_fields)
        if obj is not None:
            return ("partner", *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("scopes"))
    def scope_list(self, api_key):
        return ", ".join(api_key.scopes)

    @admin.display(description=_("state"))
    def state(self, api_key):
        if api_key.is_revoked:
            return _("revoked")
        if api_key.has_expired(timezone.now()):
            return _("expired")
        return _("active")

    def save_model(self, request, obj, form, change):
        if not change:
            key = api_key_assign(obj)
            obj.save()
            self.message_user(request, _(
                "The API key for “%(name)s” is: %(key)s — copy it now and give it to the partner safely; "
                "it is stored only as a hash and will not be shown again.") % {"name": obj.name, "key": key},
                messages.WARNING)
        else:
            obj.save()

    @admin.action(description=_("Revoke the selected keys (cannot be undone)"), permissions=["change"])
    def revoke(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            api_key_revoke(api_key=api_key)
        self.message_user(request, ngettext("%(count)d key revoked.", "%(count)d keys revoked.", len(keys))
                          % {"count": len(keys)})
