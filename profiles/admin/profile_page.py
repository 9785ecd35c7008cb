"""The profile page: what staff read when they open a customer (the change form is one
click away, under "Edit")."""
import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.dates import typed_date
from cdp.models import AuditLog

from .. import selectors, services
from ..event_labels import EventLabels
from ..masking import can_see_personal_data, mask_email, mask_identity, mask_phone
from ..models import Profile, ProfileActivity, ProfileStatus, Tag, TagSource
from ..services.tags import profile_tag_add, profile_tag_remove
from ..recommendations import profile_recommendations
from ..registry import event_labels_cached
from ..timeline import Cursor, TimelineFilter, profile_timeline


class ProfilePageMixin:
    """Mixed into ProfileAdmin: GET on a customer shows the page; ?edit=1 shows the form."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/timeline/", wrap(self.timeline_view), name="profiles_profile_timeline"),
            path("<path:object_id>/note/", wrap(require_POST(self.note_view)), name="profiles_profile_note"),
            path("<path:object_id>/reveal/", wrap(require_POST(self.reveal_view)), name="profiles_profile_reveal"),
            path("<path:object_id>/tags/", wrap(require_POST(self.tag_view)), name="profiles_profile_tag"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET" and "edit" not in request.GET:
            return self.profile_page_view(request, object_id)
        if request.method == "GET" and can_see_personal_data(request.user):
            # The edit form shows the phone and email in full: that is a reveal too.
            profile = self._profile(request, object_id)
            audit_record(actor=Actor.staff(request.user), action=AuditLog.Action.REVEAL_PERSONAL_DATA,
                         target=str(profile.uuid), details={"fields": ["phone", "email"], "via": "edit form"},
                         request=request)
        return super().change_view(request, object_id, form_url, extra_context)

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if "_continue" in request.POST and isinstance(response, HttpResponseRedirect):
            response["Location"] += ("&" if "?" in response["Location"] else "?") + "edit=1"
        return response

    def has_change_permission(self, request, obj=None):
        """Erased and merged customers are read-only, whatever the user may do."""
        if obj is not None and obj.status != ProfileStatus.ACTIVE:
            return False
        return super().has_change_permission(request, obj)

    def _profile(self, request, object_id) -> Profile:
        profile = self.get_object(request, object_id)
        if profile is None:
            raise Http404(_("No customer with this id."))
        if not self.has_view_or_change_permission(request, profile):
            raise PermissionDenied
        return profile

    def profile_page_view(self, request, object_id):
        profile = self._profile(request, object_id)
        if profile.merged_into_id:
            messages.warning(request, _("“%(name)s” was merged into this customer and is read-only; showing the customer "
                                        "it was merged into.") % {"name": profile})
            return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[profile.merged_into_id]))
        filters = _timeline_filter(request)
        # Read once, shared: the event labels (timeline, its filter, the recommendations),
        # the customer's tags and the active hand-given tags (groups, radar, the add-tag list).
        labels = event_labels_cached()
        entries, next_cursor = profile_timeline(profile, filters=filters, labels=labels)
        own_tags, tags = selectors.profile_tags_and_assignable(profile)
        tag_groups = selectors.profile_tag_groups(profile, profile_tags=own_tags)
        interests = selectors.profile_interest_axes(profile, profile_tags=own_tags, tags=tags)
        has_tag = {profile_tag.tag_id for profile_tag in own_tags}
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "is_nav_sidebar_enabled": False,  # the page needs the width; the header links back
            "title": str(profile),
            "subtitle": _("Customer"),
            "profile": profile,
            # Masked for everyone; staff allowed to see more reveal it with an audited click.
            "phone": mask_phone(profile.phone),
            "email": mask_email(profile.email),
            "can_reveal": can_see_personal_data(request.user) and bool(profile.phone or profile.email),
            "identities": [
                (identity, mask_identity(identity.kind_id, identity.value))
                for identity in profile.identities.select_related("kind").order_by("kind_id", "created_at")
            ],
            "tag_groups": tag_groups,
            "interests": {"names": [n for n, _w in interests], "weights": [round(w, 3) for _n, w in interests]},
            "interest_rows": interests,
            "has_interests": bool(interests),
            "recommendations": profile_recommendations(profile, labels=labels),
            "entries": entries,
            "next_cursor": next_cursor,
            "timeline_types": _timeline_types(labels),
            "filters": filters,
            "can_edit": self.has_change_permission(request, profile),
            "is_erased": profile.status == ProfileStatus.ERASED,
            "sections": selectors.profile_sections(profile, request),
            "assignable_tags": [tag for tag in tags if tag.pk not in has_tag],
        }
        return TemplateResponse(request, "admin/profiles/profile/page.html", context)

    def _may_write(self, request, profile) -> bool:
        """The user may change customers; whether this one can still be changed (erased,
        merged) is the services' to say, with their message."""
        return super().has_change_permission(request, profile)

    def timeline_view(self, request, object_id):
        """The next page of the timeline, as HTML to append ("load more")."""
        profile = self._profile(request, object_id)
        filters = _timeline_filter(request)
        entries, next_cursor = profile_timeline(profile, after=Cursor.parse(request.GET.get("after")), filters=filters,
                                                labels=event_labels_cached())
        return TemplateResponse(request, "admin/profiles/profile/timeline_entries.html", {
            "entries": entries, "next_cursor": next_cursor, "profile": profile, "filters": filters,
        })

    def note_view(self, request, object_id):
        profile = self._profile(request, object_id)
        if not self._may_write(request, profile):
            raise PermissionDenied
        try:
            services.note_add(profile=profile, text=request.POST.get("text", ""), actor=Actor.staff(request.user))
            messages.success(request, _("Note added."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[profile.pk]))

    def tag_view(self, request, object_id):
        """Add or remove one tag from the page (the same services as the bulk actions)."""
        profile = self._profile(request, object_id)
        if not self._may_write(request, profile):
            raise PermissionDenied
        tag_id = request.POST.get("tag", "")
        tag = Tag.objects.filter(pk=tag_id).first() if tag_id.isdigit() else None
        if tag is None:
            messages.error(request, _("Choose a tag first."))
        else:
            actor = Actor.staff(request.user)
            try:
                if request.POST.get("remove"):
                    profile_tag_remove(profile=profile, tag=tag, source=TagSource.MANUAL, actor=actor)
                    messages.success(request, _("Tag “%(tag)s” removed.") % {"tag": tag.name})
                else:
                    added = profile_tag_add(profile=profile, tag=tag, source=TagSource.MANUAL, actor=actor,
                                            reason=request.POST.get("reason", "").strip())
                    if added:
                        messages.success(request, _("Tag “%(tag)s” added.") % {"tag": tag.name})
                    else:
                        messages.info(request, _("The customer already has the tag “%(tag)s”.") % {"tag": tag.name})
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
        return HttpResponseRedirect(reverse("admin:profiles_profile_change", args=[profile.pk]))

    def reveal_view(self, request, object_id):
        """Unmasked phone and email for staff allowed to see them; every reveal is audited."""
        profile = get_object_or_404(Profile, pk=object_id)
        if not can_see_personal_data(request.user):
            raise PermissionDenied
        audit_record(
            actor=Actor.staff(request.user), action=AuditLog.Action.REVEAL_PERSONAL_DATA, target=str(profile.uuid),
            details={"fields": ["phone", "email", "identities"]}, request=request,
        )
        return JsonResponse({
            "phone": profile.phone, "email": profile.email,
            "identities": {str(i.pk): i.value for i in profile.identities.all()},
        })


def _timeline_filter(request) -> TimelineFilter:
    since, until = typed_date(request.GET.get("since")), typed_date(request.GET.get("until"))

    def start_of(day):
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min)) if day else None

    return TimelineFilter(
        types=[t for t in request.GET.getlist("type") if t[:2] in ("e:", "a:")],
        since=start_of(since),
        until=start_of(until + datetime.timedelta(days=1)) if until else None,
    )


def _timeline_types(labels: EventLabels) -> list[tuple[str, str]]:
    events = [(f"e:{name}", label) for name, label in labels.events().items()]
    activities = [(f"a:{value}", str(label)) for value, label in ProfileActivity.Type.choices]
    return events + activities
