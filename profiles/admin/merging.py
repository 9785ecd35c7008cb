"""Duplicate candidates, the side-by-side comparison, merge and unmerge."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cdp.actors import Actor
from cdp.money import money

from .. import selectors
from ..masking import mask_email, mask_identity, mask_phone
from ..models import Profile, ProfileMerge
from ..services.merge import profiles_merge, profiles_unmerge, survivor_of

COMPARED_FIELDS = (
    "name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation", "traits",
    "lifecycle_stage", "order_count", "total_spent", "first_seen_at", "last_seen_at", "created_at", "updated_at",
)


class MergingMixin:
    """Mixed into ProfileAdmin: /duplicates/ and /compare/?a=…&b=…"""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("duplicates/", wrap(self.duplicates_view), name="profiles_profile_duplicates"),
            path("compare/", wrap(self.compare_view), name="profiles_profile_compare"),
            *super().get_urls(),
        ]

    def duplicates_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return TemplateResponse(request, "admin/profiles/profile/duplicates.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Duplicate candidates"),
            "groups": selectors.duplicate_candidates(),
        })

    def compare_view(self, request):
        ids = [request.GET.get("a") or request.POST.get("a"), request.GET.get("b") or request.POST.get("b")]
        if not all(i and i.isdigit() for i in ids) or ids[0] == ids[1]:
            messages.error(request, _("Choose two different customers to compare."))
            return HttpResponseRedirect(reverse("admin:profiles_profile_duplicates"))
        a, b = (get_object_or_404(Profile, pk=int(i)) for i in ids)
        if request.method == "POST":
            return self._merge(request, a, b)
        if not self.has_view_permission(request):
            raise PermissionDenied
        survivor, _merged = survivor_of(a, b)
        rows = [(Profile._meta.get_field(name).verbose_name, _shown(a, name), _shown(b, name)) for name in COMPARED_FIELDS]
        identities = [
            [f"{i.kind}: {mask_identity(i.kind_id, i.value)}" for i in p.identities.select_related("kind")]
            for p in (a, b)
        ]
        counts = [(p.events.count(), p.profile_tags.count()) for p in (a, b)]
        return TemplateResponse(request, "admin/profiles/profile/compare.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Compare and merge"),
            "a": a, "b": b, "rows": rows, "identities": identities, "counts": counts,
            "suggested_survivor": survivor.pk,
            "can_merge": self.has_change_permission(request) and a.status == b.status == "active",
        })

    def _merge(self, request, a: Profile, b: Profile):
        if not self.has_change_permission(request):
            raise PermissionDenied
        survivor, merged = (a, b) if request.POST.get("survivor") == str(a.pk) else (b, a)
        try:
            record = profiles_merge(survivor=survivor, merged=merged, actor=Actor.staff(request.user),
                                    reason=request.POST.get("reason", ""))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return HttpResponseRedirect(f"{reverse('admin:profiles_profile_compare')}?a={a.pk}&b={b.pk}")
        undo = reverse("admin:profiles_profilemerge_change", args=[record.pk])
        messages.success(request, format_html(
            _("Merged {merged} into {survivor}. <a href=\"{undo}\">Undo this merge</a>"),
            merged=merged, survivor=survivor, undo=undo,
        ))
        return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[survivor.pk]))


def _shown(profile: Profile, name: str):
    """Personal data stays masked here too; the profile page has the audited reveal."""
    value = getattr(profile, name)
    if name == "phone":
        return mask_phone(value)
    if name == "email":
        return mask_email(value)
    if name == "total_spent":
        return money(value)
    display = getattr(profile, f"get_{name}_display", None)
    return display() if display else value


@admin.register(ProfileMerge)
class ProfileMergeAdmin(admin.ModelAdmin):
    list_display = ("merged", "survivor", "actor_label", "merged_at", "undone_at")
    list_select_related = ("merged", "survivor")
    readonly_fields = ("merged", "survivor", "reason", "actor_label", "merged_at", "undone_at", "undone_by_label", "moved_summary")
    fields = readonly_fields
    actions = ["unmerge"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # read-only; "Undo this merge" posts to change_view below

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("what moved"))
    def moved_summary(self, obj):
        labels = {
            "events": _("events"), "identities": _("identities"), "activities": _("activities"), "tags": _("tags"),
            "duplicate_tags": _("tags both had"), "tombstones": _("earlier merged profiles"),
        }
        moved = obj.moved or {}
        return ", ".join(f"{labels.get(kind, kind)}: {len(ids)}" for kind, ids in moved.items() if isinstance(ids, list))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST" and "_unmerge" in request.POST:
            merge = get_object_or_404(ProfileMerge, pk=object_id)
            self._unmerge(request, merge)
            return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[merge.merged_id]))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "show_unmerge": True})

    def _unmerge(self, request, merge: ProfileMerge) -> bool:
        if not request.user.has_perm("profiles.change_profile"):
            raise PermissionDenied
        try:
            profiles_unmerge(merge=merge, actor=Actor.staff(request.user))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return False
        messages.success(request, _("Unmerged: %(merged)s and %(survivor)s are separate again.")
                         % {"merged": merge.merged, "survivor": merge.survivor})
        return True

    @admin.action(description=gettext_lazy("Undo the selected merges"))
    def unmerge(self, request, queryset):
        for merge in queryset.filter(undone_at__isnull=True).order_by("-merged_at"):
            self._unmerge(request, merge)
