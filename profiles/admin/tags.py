import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp.actors import Actor
from cdp.admin_actions import action_form_value
from cdp.queueing import task_queue_after_commit
from segments.builder import ConditionBuilderWidget, DefinitionField
from segments.rule_tags import rule_tag_check, rule_tag_save
from segments.tasks import refresh_rule_tags

from .. import selectors
from ..models import InterestMapping, Tag, TagCategory, TagKind
from ..services.tags import tag_merge, tag_retire
from ..tasks import recompute_interests


def customers_with_tag_url(tag: Tag) -> str:
    return f"{reverse('admin:profiles_profile_changelist')}?tags={tag.slug}"


@admin.register(TagCategory)
class TagCategoryAdmin(admin.ModelAdmin):
    """The taxonomy as a tree: categories, their tags, and how many customers hold each."""

    fields = ("name", "parent", "description")
    search_fields = ("name",)

    def changelist_view(self, request, extra_context=None):
        if request.GET.get("q"):
            return super().changelist_view(request, extra_context)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Tag taxonomy"),
            "opts": self.model._meta,
            "tree": selectors.tag_tree(),
            "has_add_permission": self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/profiles/tagcategory/tree.html", context)

    def get_search_results(self, request, queryset, search_term):
        """The seeded roots are also found by their name in the reader's language."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().casefold()
        roots = [c.pk for c in TagCategory.objects.filter(code__isnull=False) if term and term in c.display_name.casefold()]
        return queryset | self.model.objects.filter(pk__in=roots), may_have_duplicates

    def get_readonly_fields(self, request, obj=None):
        return ("parent",) if obj is not None and obj.code else ()

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.code:  # the four seeded roots
            return False
        return super().has_delete_permission(request, obj)


class RuleDefinitionField(DefinitionField):
    """A rule tag's condition in the segments' condition language, edited with the
    segments' visual builder (live count and sample included)."""

    widget = ConditionBuilderWidget()

    def prepare_value(self, value):
        if not value or isinstance(value, forms.fields.InvalidJSONInput):
            return value or ""  # no rule yet: an empty box, not "null" or "{}"
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class TagForm(forms.ModelForm):
    rule_definition = RuleDefinitionField(
        label=_("Rule"), required=False,
        help_text=_('Tags of kind “Rule” only: the customers this condition matches get the tag, e.g. '
                    '{"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}.'),
    )

    class Meta:
        model = Tag
        fields = ("name", "synonyms", "slug", "category", "kind", "description", "colour", "owner", "is_active",
                  "rule_definition")
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["slug"].help_text = _("Stable name used by segments, imports and the API; made from the name when left empty.")

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name", ""), allow_unicode=True)
        if not slug:
            raise ValidationError(_("Give the tag a slug (letters, digits, hyphens)."))
        if Tag.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
            raise ValidationError(_("Another tag already uses the slug “%(slug)s”.") % {"slug": slug})
        return slug

    user = None  # the staff member editing (TagAdmin.get_form): the rule is checked for them

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") != TagKind.RULE:
            rule = cleaned.get("rule_definition")
            if rule and rule != self.instance.rule_definition:
                self.add_error("rule_definition", _("Only tags of kind “Rule” have a rule: choose that kind, or empty the rule."))
            # Other kinds keep (and ignore) a rule stored earlier, for when they turn back into rule tags.
            cleaned["rule_definition"] = self.instance.rule_definition
        elif "rule_definition" not in self.errors:
            # The tag as it will be saved: a new slug or category can close a cycle.
            candidate = Tag(pk=self.instance.pk, kind=TagKind.RULE,
                            name=cleaned.get("name") or self.instance.name,
                            slug=cleaned.get("slug") or self.instance.slug,
                            category=cleaned.get("category") or getattr(self.instance, "category", None))
            try:
                rule_tag_check(tag=candidate, definition=cleaned.get("rule_definition"), user=self.user)
            except ValidationError as error:
                self.add_error("rule_definition", error)
        return cleaned


class MergeTagsForm(ActionForm):
    target = forms.ModelChoiceField(
        queryset=Tag.objects.filter(is_active=True), required=False, label=_("into tag"),
    )


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    form = TagForm
    list_display = ("name", "colour_chip", "category", "kind", "customers", "rule_status", "is_active", "owner")
    list_filter = ("kind", "is_active", "category")
    list_select_related = ("category", "category__parent", "owner")
    search_fields = ("name", "synonyms", "slug", "description")
    readonly_fields = ("customers", "merged_into", "where_used", "created_at", "rule_version", "rule_refreshed_at",
                       "rule_problem")
    autocomplete_fields = ("category",)
    action_form = MergeTagsForm
    actions = ["merge_tags", "retire_tags", "refresh_rules_now"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def get_fieldsets(self, request, obj=None):
        tag_fields = [f for f in TagForm.Meta.fields if f != "rule_definition"]
        if obj is not None:
            tag_fields += ["customers", "merged_into", "where_used", "created_at"]
        is_rule = obj is not None and obj.kind == TagKind.RULE
        rule_fields = ["rule_definition", "rule_version", "rule_refreshed_at", "rule_problem"] if is_rule else ["rule_definition"]
        return [
            (None, {"fields": tag_fields}),
            (_("Rule (tags of kind “Rule”)"), {"fields": rule_fields, "classes": () if is_rule else ("collapse",)}),
        ]

    def save_model(self, request, obj, form, change):
        if not change and obj.owner_id is None:
            obj.owner = request.user
        if obj.kind != TagKind.RULE:
            super().save_model(request, obj, form, change)
            return
        tag = rule_tag_save(tag=obj, definition=form.cleaned_data["rule_definition"])
        task_queue_after_commit(task=refresh_rule_tags, kwargs={"tag_ids": [tag.pk]}, request=request)

    @admin.display(description=_("rule"))
    def rule_status(self, obj):
        """For rule tags: the error of the last refresh if it failed, else its version and time."""
        if obj.kind != TagKind.RULE:
            return ""
        if obj.rule_error:
            return format_html('<span style="color:#ba2121" title="{}">⚠ {}</span>', obj.rule_error, _("refresh failed"))
        if obj.rule_refreshed_at is None:
            return format_html("v{} · {}", obj.rule_version, _("not refreshed yet"))
        return format_html("v{} · {}", obj.rule_version, timezone.localtime(obj.rule_refreshed_at).strftime("%Y-%m-%d %H:%M"))

    @admin.display(description=_("rule error"))
    def rule_problem(self, obj):
        if not obj.rule_error:
            return "—"
        return format_html('<span style="color:#ba2121; white-space:pre-wrap">{}</span>', obj.rule_error)

    @admin.display(description=_("colour"))
    def colour_chip(self, obj):
        return format_html('<span style="display:inline-block;width:1em;height:1em;border-radius:3px;background:{}"></span>', obj.colour)

    @admin.display(description=_("customers"), ordering="profile_count")
    def customers(self, obj):
        return format_html('<a href="{}">{}</a>', customers_with_tag_url(obj), obj.profile_count)

    @admin.display(description=_("where used"))
    def where_used(self, obj):
        usages = selectors.tag_usages(obj)
        if not usages:
            return _("Not used by any segment, rule or interest mapping.")
        return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', ((u.url, str(u)) for u in usages)))

    def get_deleted_objects(self, objs, request):
        """Refuse (as the admin does for protected rows) to delete tags something uses."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for tag in objs:
            protected.extend(f"{tag.name}: {usage}" for usage in selectors.tag_usages(tag))
        return deleted, counts, perms_needed, protected

    @admin.action(description=_("Merge the selected tags into the tag chosen beside"), permissions=["change"])
    def merge_tags(self, request, queryset):
        target = action_form_value(request, MergeTagsForm, "target")
        if not target:
            self.message_user(request, _("Choose the tag to merge into, next to the action."), messages.ERROR)
            return
        actor = Actor.staff(request.user)
        moved = 0
        try:
            with transaction.atomic():
                for source in queryset.exclude(pk=target.pk):
                    moved += tag_merge(source=source, target=target, actor=actor)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        self.message_user(request, ngettext(
            "Merged into “%(tag)s”: %(count)d customer moved over.",
            "Merged into “%(tag)s”: %(count)d customers moved over.", moved,
        ) % {"tag": target.name, "count": moved}, messages.SUCCESS)

    @admin.action(description=_("Refresh the selected rule tags now"), permissions=["change"])
    def refresh_rules_now(self, request, queryset):
        ids = list(queryset.filter(kind=TagKind.RULE, is_active=True).values_list("pk", flat=True))
        if not ids:
            self.message_user(request, _("None of the selected tags is an active rule tag."), messages.WARNING)
            return
        task_queue_after_commit(task=refresh_rule_tags, kwargs={"tag_ids": ids}, request=request)
        self.message_user(request, ngettext(
            "Refresh of %(count)d rule tag queued; its customers update in the background.",
            "Refresh of %(count)d rule tags queued; their customers update in the background.", len(ids),
        ) % {"count": len(ids)}, messages.SUCCESS)

    @admin.action(description=_("Retire the selected tags"), permissions=["change"])
    def retire_tags(self, request, queryset):
        for tag in queryset:
            tag_retire(tag=tag)
        self.message_user(request, _("Retired %(count)d tag(s).") % {"count": queryset.count()}, messages.SUCCESS)


class InterestMappingForm(forms.ModelForm):
    class Meta:
        model = InterestMapping
        fields = ("tag", "event_weights", "property_name", "property_values", "half_life_days", "saturation", "threshold", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].queryset = Tag.objects.filter(kind=TagKind.INTEREST, is_active=True)


@admin.register(InterestMapping)
class InterestMappingAdmin(admin.ModelAdmin):
    form = InterestMappingForm
    list_display = ("tag", "events", "property_name", "values", "half_life_days", "threshold", "is_active", "last_run_at")
    list_select_related = ("tag",)
    readonly_fields = ("last_run_at",)
    actions = ["recompute_now"]

    @admin.display(description=_("events and weights"))
    def events(self, obj):
        return ", ".join(f"{name}×{weight}" for name, weight in obj.event_weights.items())

    @admin.display(description=_("property values"))
    def values(self, obj):
        return ", ".join(map(str, obj.property_values))

    @admin.action(description=_("Recompute the selected interest scores now"), permissions=["change"])
    def recompute_now(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        task_queue_after_commit(task=recompute_interests, kwargs={"mapping_ids": ids}, request=request)
        self.message_user(request, _("Recomputation queued; the weights update in the background."), messages.SUCCESS)
