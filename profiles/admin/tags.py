from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp.actors import Actor
from cdp.admin_actions import action_form_value

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

    def get_readonly_fields(self, request, obj=None):
        return ("parent",) if obj is not None and obj.code else ()

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.code:  # the four seeded roots
            return False
        return super().has_delete_permission(request, obj)


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ("name", "slug", "category", "kind", "description", "colour", "owner", "is_active")
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


class MergeTagsForm(ActionForm):
    target = forms.ModelChoiceField(
        queryset=Tag.objects.filter(is_active=True), required=False, label=_("into tag"),
    )


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    form = TagForm
    list_display = ("name", "colour_chip", "category", "kind", "customers", "is_active", "owner")
    list_filter = ("kind", "is_active", "category")
    list_select_related = ("category", "category__parent", "owner")
    search_fields = ("name", "slug", "description")
    readonly_fields = ("customers", "merged_into", "where_used", "created_at")
    autocomplete_fields = ("category",)
    action_form = MergeTagsForm
    actions = ["merge_tags", "retire_tags"]

    def get_fields(self, request, obj=None):
        fields = list(TagForm.Meta.fields)
        return fields + list(self.readonly_fields) if obj else fields

    def save_model(self, request, obj, form, change):
        if not change and obj.owner_id is None:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

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
        transaction.on_commit(lambda: recompute_interests.delay(mapping_ids=ids))
        self.message_user(request, _("Recomputation queued; the weights update in the background."), messages.SUCCESS)
