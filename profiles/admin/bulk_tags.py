"""Bulk tagging from the customer list: "add tag" / "remove tag" on a selection, with a
reason, through a confirmation page that states the exact number first.

The list itself never counts past CDP_ADMIN_COUNT_CAP ("1,000+"), so "select all" on a
filtered list of 12,717 customers cannot say how many it holds. Before anything is
written the confirmation page counts the selection exactly (one query, see
selectors.tag_selection_counts): how many will get the tag, how many already have it and
how many are erased or merged (never tagged). The report afterwards gives what was done.
"""
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext

from cdp.actors import Actor
from cdp.admin_actions import action_form_value
from cdp.money import grouped

from .. import selectors
from ..models import TagSource
from ..services.tags import tag_assign, tag_remove

REASON_MAX_LENGTH = 255


class TagActionForm(ActionForm):
    tag = forms.ModelChoiceField(queryset=selectors.assignable_tags(), required=False, label=gettext_lazy("tag"))
    reason = forms.CharField(
        required=False, max_length=REASON_MAX_LENGTH, label=gettext_lazy("reason"),
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("why (shown on each customer's timeline)"),
                                      "size": 28}),
    )


class BulkTagActionsMixin:
    """Mixed into ProfileAdmin: the add_tag and remove_tag actions."""

    action_form = TagActionForm

    def _chosen_tag(self, request):
        tag = action_form_value(request, TagActionForm, "tag")
        if tag is None:
            self.message_user(request, _("Choose a tag next to the action first."), messages.ERROR)
        return tag

    def _bulk_tag(self, request, queryset, *, remove: bool):
        tag = self._chosen_tag(request)
        if tag is None:
            return None
        reason = " ".join((request.POST.get("reason") or "").split())
        if len(reason) > REASON_MAX_LENGTH:
            self.message_user(request, _("A reason can be at most %(max)d characters long.")
                              % {"max": REASON_MAX_LENGTH}, messages.ERROR)
            return None
        counts = selectors.tag_selection_counts(tag, queryset)
        if request.POST.get("confirm") != "yes":
            return self._bulk_tag_confirmation(request, tag, reason, counts, remove=remove)
        actor = Actor.staff(request.user)
        try:
            if remove:
                done = tag_remove(tag=tag, profiles=queryset, source=TagSource.MANUAL, actor=actor, reason=reason)
            else:
                done = tag_assign(tag=tag, profiles=queryset, source=TagSource.MANUAL, actor=actor, reason=reason)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return None
        self.message_user(request, _bulk_report(tag, done, counts, remove=remove), messages.SUCCESS)
        return None

    def _bulk_tag_confirmation(self, request, tag, reason, counts, *, remove: bool):
        """The intermediate page: the exact numbers, the reason (editable), confirm or go back.
        It posts the same action back to the same address (the list's filters are in it)."""
        select_across = request.POST.get("select_across") == "1"
        return TemplateResponse(request, "admin/profiles/profile/bulk_tag_confirm.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": (_("Remove the tag “%(tag)s”?") if remove else _("Add the tag “%(tag)s”?")) % {"tag": tag.name},
            "tag": tag,
            "reason": reason,
            "remove": remove,
            "counts": counts,
            "will_change": counts.holding_any if remove else counts.to_add,
            "action": "remove_tag" if remove else "add_tag",
            "select_across": select_across,
            # Sent back even with "select all": the admin runs no action without a ticked row.
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "back_url": request.get_full_path(),
        })

    @admin.action(description=gettext_lazy("Add the tag chosen beside to the selected customers"),
                  permissions=["change"])
    def add_tag(self, request, queryset):
        # With "select all", `queryset` is every customer matching the filter: counted
        # exactly, then tagged in one statement.
        return self._bulk_tag(request, queryset, remove=False)

    @admin.action(description=gettext_lazy("Remove the tag chosen beside from the selected customers"),
                  permissions=["change"])
    def remove_tag(self, request, queryset):
        return self._bulk_tag(request, queryset, remove=True)


def _bulk_report(tag, done: int, counts, *, remove: bool) -> str:
    """What was done, and why the other selected customers were left alone."""
    if remove:
        parts = [ngettext("Tag “%(tag)s” removed from %(count)s customer.",
                          "Tag “%(tag)s” removed from %(count)s customers.", done)
                 % {"tag": tag.name, "count": grouped(done)}]
        if counts.without_tag:
            parts.append(ngettext("%(count)s did not have it.", "%(count)s did not have it.", counts.without_tag)
                         % {"count": grouped(counts.without_tag)})
        return " ".join(parts)
    parts = [ngettext("Tag “%(tag)s” added to %(count)s customer.", "Tag “%(tag)s” added to %(count)s customers.", done)
             % {"tag": tag.name, "count": grouped(done)}]
    already = max(counts.selected - counts.inactive - done, 0)  # had it already (or were given it meanwhile)
    if already:
        parts.append(ngettext("%(count)s already had it.", "%(count)s already had it.", already)
                     % {"count": grouped(already)})
    if counts.inactive:
        parts.append(ngettext("%(count)s erased or merged customer was left out.",
                              "%(count)s erased or merged customers were left out.", counts.inactive)
                     % {"count": grouped(counts.inactive)})
    return " ".join(parts)
