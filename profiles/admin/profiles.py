import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Subquery
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext, ngettext

from cdp.actors import Actor, actor_display
from cdp.admin_readonly import ReadOnlyAdmin
from cdp.admin_paginator import EstimatedCountPaginator
from cdp.money import money_cell
from segments.quick.admin import QuickAudienceFilter  # the quick audience box's ?audience=<definition> (a face)

from .. import selectors, services
from ..event_labels import SOURCE_LABELS
from ..masking import can_see_personal_data, mask_email, mask_identity, mask_phone
from ..metrics import metrics_recompute
from ..models import (
    AttributeDefinition,
    Event,
    EventDefinition,
    Identity,
    IdentityKind,
    Profile,
    ProfileActivity,
    ProfileTag,
    Tag,
    TagCategory,
    TagSource,
)
from ..services.suppression import identities_refuse_suppressed
from ..services.tags import tag_assign, tag_remove
from .bulk_tags import BulkTagActionsMixin
from .list_filters import CityFilter, ConsentFilter, ProvinceFilter, SegmentFilter
from .imports import ImportEventsFilter, ImportJobFilter
from .merging import MergingMixin
from .personal_data import PersonalDataLookupsMixin
from .profile_page import ProfilePageMixin


class ProfileAdminForm(forms.ModelForm):
    """Normalises like every other entry path and refuses a phone or email that already
    identifies another customer, with a message instead of a database error."""

    class Meta:
        model = Profile
        fields = services.EDITABLE_FIELDS

    def clean(self):
        cleaned = super().clean()
        data = {f: cleaned[f] for f in services.EDITABLE_FIELDS if f in cleaned}
        try:
            normalised = services.profile_fields_normalise(data)
            changed = {f: normalised.get(f) for f in ("phone", "email") if normalised.get(f) != getattr(self.instance, f)}
            identities_refuse_suppressed(changed)  # an erased person's phone or email stays out
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                self.add_error(field, errors)
            return cleaned
        for kind in ("phone", "email"):
            value = normalised.get(kind)
            owner = value and selectors.identity_owner(kind=kind, value=value)
            if owner and owner.pk != self.instance.pk:
                self.add_error(kind, _("This %(kind)s already identifies another customer: %(name)s.")
                               % {"kind": self.fields[kind].label, "name": owner})
        cleaned.update(normalised)
        return cleaned


class IdentityInline(admin.TabularInline):
    """The customer's identities, read-only and masked for everyone (phones and emails;
    CRM and WeChat ids are pseudonymous keys): the profile page's audited reveal shows them."""

    model = Identity
    fields = ("kind", "value_masked", "source", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("value"))
    def value_masked(self, obj):
        return mask_identity(obj.kind_id, obj.value)


class ProfileTagInline(admin.TabularInline):
    """The customer's tags. Existing rows are read-only; adding and removing go through
    the tag services (see ProfileAdmin.save_formset) so the timeline records them."""

    model = ProfileTag
    fields = ("tag", "source", "weight", "reason_text", "assigned_by_label", "assigned_at", "expires_at")
    readonly_fields = ("source", "weight", "reason_text", "assigned_by_label", "assigned_at")
    extra = 0
    verbose_name = _("tag")
    verbose_name_plural = _("tags")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tag", "tag__category")

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("reason"))
    def reason_text(self, obj):
        return obj.reason_display

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tag":
            kwargs["queryset"] = selectors.assignable_tags().select_related("category")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TagFilter(admin.SimpleListFilter):
    """Customers holding all the chosen tags: each click adds a tag to (or takes it off)
    the combination, e.g. ?tags=shanghai-vip,sneaker-lover."""

    title = _("tags (all of)")
    parameter_name = "tags"

    def lookups(self, request, model_admin):
        return Tag.objects.filter(is_active=True).order_by("name").values_list("slug", "name")[:300]

    def chosen(self) -> list[str]:
        return [slug for slug in (self.value() or "").split(",") if slug]

    def choices(self, changelist):
        chosen = self.chosen()
        yield {
            "selected": not chosen,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("All"),
        }
        for slug, name in self.lookup_choices:
            combination = [s for s in chosen if s != slug] if slug in chosen else [*chosen, slug]
            yield {
                "selected": slug in chosen,
                "query_string": changelist.get_query_string({self.parameter_name: ",".join(combination)})
                if combination else changelist.get_query_string(remove=[self.parameter_name]),
                "display": name,
            }

    def queryset(self, request, queryset):
        for slug in self.chosen():
            queryset = queryset.filter(Exists(ProfileTag.objects.filter(profile_id=OuterRef("pk"), tag__slug=slug)))
        return queryset


class TagCategoryFilter(admin.SimpleListFilter):
    """Customers holding any tag in a category or its sub-categories."""

    title = _("any tag in category")
    parameter_name = "tag_category"

    def lookups(self, request, model_admin):
        return [(str(c.pk), str(c)) for c in TagCategory.objects.select_related("parent__parent")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        known = {value for value, _label in self.lookup_choices}  # not any number from the address bar
        categories = selectors.tag_category_with_descendants(int(self.value())) if self.value() in known else set()
        return queryset.filter(
            Exists(ProfileTag.objects.filter(profile_id=OuterRef("pk"), tag__category__in=categories))
        )


def score_filter(field_name: str, title) -> type[admin.SimpleListFilter]:
    """A list filter for an RFM score with fixed choices 1–5 (Django's default would run
    SELECT DISTINCT over every customer on each page load)."""

    class ScoreFilter(admin.SimpleListFilter):
        parameter_name = field_name

        def lookups(self, request, model_admin):
            return [(str(score), str(score)) for score in range(5, 0, -1)]

        def queryset(self, request, queryset):
            return queryset.filter(**{field_name: int(self.value())}) if self.value() in {"1", "2", "3", "4", "5"} else queryset

    ScoreFilter.title = title
    return ScoreFilter


@admin.register(Profile)
class ProfileAdmin(BulkTagActionsMixin, PersonalDataLookupsMixin, MergingMixin, ProfilePageMixin, admin.ModelAdmin):
    form = ProfileAdminForm
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice over millions of rows
    list_display = (
        "__str__", "phone_masked", "email_masked", "city", "gender", "lifecycle_stage", "order_count", "total_spent_money",
        "last_seen_at",
    )
    list_filter = (
        ImportJobFilter,  # first, and shown only while used: an import job's page links to it
        QuickAudienceFilter,  # shown only while used: the quick audience box links to it
        CityFilter, ProvinceFilter, "lifecycle_stage", TagFilter, TagCategoryFilter, SegmentFilter, ConsentFilter,
        "status", "gender",
        score_filter("rfm_recency", _("R score")), score_filter("rfm_frequency", _("F score")),
        score_filter("rfm_monetary", _("M score")),
    )
    search_fields = ("name",)  # shows the search box; get_search_results does the real work
    search_help_text = _("Phone in any format, email, name (or part of it), CRM id, WeChat id, public id, or a city "
                         "or province (上海, 上海市, Shanghai).")
    ordering = ("-id",)
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [IdentityInline, ProfileTagInline]
    readonly_fields = (
        "uuid", "status", "merged_into", "first_seen_at", "last_seen_at", "order_count", "total_spent_money",
        "last_order_at", "rfm_recency", "rfm_frequency", "rfm_monetary", "lifecycle_stage",
        "metrics_updated_at", "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("uuid", "name", "gender", "birth_date", "occupation")}),
        (_("Contact"), {"fields": ("phone", "email")}),
        (_("Location"), {"fields": ("country", "province", "city")}),
        (_("Custom traits"), {"fields": ("traits",)}),
        (_("Metrics"), {"fields": (
            ("first_seen_at", "last_seen_at"), ("order_count", "total_spent_money", "last_order_at"),
            ("rfm_recency", "rfm_frequency", "rfm_monetary"), "lifecycle_stage", "metrics_updated_at",
        )}),
        (_("System"), {"fields": ("status", "merged_into", "created_at", "updated_at")}),
    )
    actions = ["add_tag", "remove_tag", "recompute_metrics"]

    def get_fieldsets(self, request, obj=None):
        """Staff who may not see personal data edit everything but the phone and email,
        which they see masked."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or can_see_personal_data(request.user):
            return fieldsets
        masked = {"phone": "phone_masked", "email": "email_masked"}
        return [(title, {**options, "fields": tuple(masked.get(f, f) for f in options["fields"])})
                for title, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not can_see_personal_data(request.user):
            return (*self.readonly_fields, "phone_masked", "email_masked")
        return self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        return selectors.profile_search(queryset, search_term), False

    @admin.display(description=_("total spent"), ordering="total_spent")
    def total_spent_money(self, obj):
        return money_cell(obj.total_spent)

    @admin.display(description=_("phone"), ordering="phone")
    def phone_masked(self, obj):
        return mask_phone(obj.phone)

    @admin.display(description=_("email"), ordering="email")
    def email_masked(self, obj):
        return mask_email(obj.email)

    def save_model(self, request, obj, form, change):
        actor = Actor.staff(request.user)
        data = {f: form.cleaned_data[f] for f in services.EDITABLE_FIELDS if f in form.cleaned_data}
        if change:
            changed = {f: data[f] for f in form.changed_data if f in data}
            services.profile_update(profile=obj, actor=actor, **changed)
        else:
            profile = services.profile_create(actor=actor, source="admin", **data)
            # The admin carries on with `obj` (inlines, log entry, redirect).
            obj.pk, obj.uuid, obj.created_at = profile.pk, profile.uuid, profile.created_at
            obj._state.adding = False

    def save_formset(self, request, form, formset, change):
        if formset.model is not ProfileTag:
            return super().save_formset(request, form, formset, change)
        actor, profile = Actor.staff(request.user), Profile.objects.filter(pk=form.instance.pk)
        added = []
        for tag_form in formset.extra_forms:
            tag = tag_form.cleaned_data.get("tag") if tag_form.has_changed() else None
            if tag:
                tag_assign(tag=tag, profiles=profile, source=TagSource.MANUAL, actor=actor,
                           expires_at=tag_form.cleaned_data.get("expires_at"))
                added.append(tag)
        removed = [f.instance for f in formset.deleted_forms if f.instance.pk]
        for row in removed:
            tag_remove(tag=row.tag, profiles=profile, source=TagSource.MANUAL, actor=actor)
        # What formset.save() would have left for the admin's change message.
        formset.new_objects = list(ProfileTag.objects.filter(profile=form.instance, tag__in=added))
        formset.changed_objects, formset.deleted_objects = [], removed

    @admin.action(description=_("Recompute metrics for the selected customers"), permissions=["change"])
    def recompute_metrics(self, request, queryset):
        updated = metrics_recompute(profile_ids=queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext("Recomputed metrics for %(count)d customer.", "Recomputed metrics for %(count)d customers.", updated)
            % {"count": updated},
            messages.SUCCESS,
        )


class EventNameFilter(admin.SimpleListFilter):
    """Lists the registered event names (a DISTINCT over millions of events would not do)."""

    title = _("event")
    parameter_name = "name"

    def lookups(self, request, model_admin):
        return selectors.event_labels().items()

    def queryset(self, request, queryset):
        return queryset.filter(name=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(PersonalDataLookupsMixin, ReadOnlyAdmin):
    list_display = ("event_label", "profile", "occurred_at", "amount_money", "source_label", "external_id")
    list_filter = (ImportEventsFilter, EventNameFilter)  # the import's only while used: its job page links to it
    list_select_related = ("profile",)
    search_fields = ("external_id",)
    search_help_text = _("External id, or a customer's public id.")
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    @admin.display(description=_("amount"), ordering="amount")
    def amount_money(self, obj):
        return money_cell(obj.amount) if obj.amount is not None else "—"

    def get_queryset(self, request):
        # The event's label from its definition, in the same query (built-in labels are
        # English source strings, shown translated).
        label = EventDefinition.objects.filter(name=OuterRef("name")).values("label")[:1]
        return super().get_queryset(request).annotate(definition_label=Subquery(label))

    @admin.display(description=_("event"), ordering="name")
    def event_label(self, obj):
        label = getattr(obj, "definition_label", None)
        return f"{gettext(label)} ({obj.name})" if label else obj.name

    @admin.display(description=_("source"), ordering="source")
    def source_label(self, obj):
        return SOURCE_LABELS.get(obj.source, obj.source)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(profile__uuid=uuid.UUID(term)), False
        except ValueError:
            return queryset.filter(external_id=term), False


@admin.register(ProfileActivity)
class ProfileActivityAdmin(PersonalDataLookupsMixin, ReadOnlyAdmin):
    list_display = ("type", "profile", "summary", "actor_kind", "actor", "occurred_at")
    list_filter = ("type", "actor_kind")
    list_select_related = ("profile",)
    ordering = ("-id",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    @admin.display(description=_("summary"))
    def summary(self, obj):
        return obj.summary

    @admin.display(description=_("actor"), ordering="actor_label")
    def actor(self, obj):
        """Staff and partners by name, the system's jobs by what they do, in the reader's language."""
        return actor_display(obj.actor_kind, obj.actor_label)


class BuiltinProtectedAdmin(admin.ModelAdmin):
    """Built-in rows are seeded by migrations and used by code: they cannot be deleted."""

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_builtin:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(IdentityKind)
class IdentityKindAdmin(BuiltinProtectedAdmin):
    list_display = ("code", "shown_name", "merge_on", "is_builtin")
    list_editable = ("merge_on",)

    @admin.display(description=_("name"), ordering="name")
    def shown_name(self, kind):
        return str(kind)  # built-in names are English source strings, shown translated

    def get_readonly_fields(self, request, obj=None):
        return ("code", "is_builtin") if obj else ("is_builtin",)


@admin.register(EventDefinition)
class EventDefinitionAdmin(BuiltinProtectedAdmin):
    list_display = ("name", "shown_label", "has_amount", "is_builtin", "review_pending")
    list_filter = ("review_pending",)  # names a tracking SDK sent first wait for review
    search_fields = ("name", "label")
    actions = ["mark_reviewed"]

    @admin.action(description=_("Mark the selected event names as reviewed"), permissions=["change"])
    def mark_reviewed(self, request, queryset):
        count = queryset.filter(review_pending=True).update(review_pending=False)
        self.message_user(request, ngettext("%(count)d event name marked as reviewed.",
                                            "%(count)d event names marked as reviewed.", count) % {"count": count})

    @admin.display(description=_("label"), ordering="label")
    def shown_label(self, definition):
        # Built-in labels are English source strings with zh_Hans translations.
        return gettext(definition.label)


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    list_display = ("key", "label", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("key", "label")
