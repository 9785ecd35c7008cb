"""Admin lists that are no oracle for masked personal data.

Staff without the "see personal data" permission read phones and emails masked. If the
list let them filter by a part (`?phone__startswith=+86139…&id__exact=1`) or sort by the
value, they could recover a full phone one digit at a time. They may filter and search by
a full value (exact match), which tells them only what they already typed."""
from django.contrib import messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpResponseRedirect
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..masking import can_see_personal_data
from ..models import Identity, Profile

# Fields holding phones or emails, by model (an identity's value may be either).
PERSONAL_FIELDS = {Profile: {"phone", "email"}, Identity: {"value"}}
# Lookups that match a full value only.
EXACT_LOOKUPS = {"exact", "iexact", "in", "isnull"}
# List columns that show a masked value: sorting by them ranks the hidden value.
MASKED_COLUMNS = {"phone_masked", "email_masked", "value_masked"}


def matches_personal_data_by_part(model, lookup: str) -> bool:
    """Whether a changelist lookup (`phone__startswith`, `profile__email__regex`…) reaches a
    phone or email field with anything but a full-value comparison."""
    parts = lookup.split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if field.name in PERSONAL_FIELDS.get(model, ()):
            rest = parts[index + 1:]
            return not (not rest or (len(rest) == 1 and rest[0] in EXACT_LOOKUPS))
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model
    return False


class _SortableOnly:
    """Django lists a column as not sortable but still orders by it when `?o=` names it."""

    def get_ordering_field(self, field_name):
        if field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


_CHANGELISTS: dict[type, type] = {}


def _sortable_only(changelist: type[ChangeList]) -> type[ChangeList]:
    if changelist not in _CHANGELISTS:
        _CHANGELISTS[changelist] = type(f"SortableOnly{changelist.__name__}", (_SortableOnly, changelist), {})
    return _CHANGELISTS[changelist]


class PersonalDataLookupsMixin:
    """For ModelAdmins listing customers: staff without the permission filter phones and
    emails by a full value only, and cannot sort by them."""

    def _restricted(self, request) -> bool:
        return request is None or not can_see_personal_data(request.user)

    def lookup_allowed(self, lookup, value, request=None):
        if self._restricted(request) and matches_personal_data_by_part(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_sortable_by(self, request):
        sortable = super().get_sortable_by(request)
        if self._restricted(request):
            sortable = [name for name in sortable if name not in MASKED_COLUMNS]
        return sortable

    def get_changelist(self, request, **kwargs):
        return _sortable_only(super().get_changelist(request, **kwargs))

    def changelist_view(self, request, extra_context=None):
        """A refused lookup is dropped with a message (Django's own answer is a bare 400)."""
        if self._restricted(request):
            refused = [key for key in request.GET if matches_personal_data_by_part(self.model, key)]
            if refused:
                messages.error(request, _("Without the permission to see personal data you can only filter by a "
                                          "whole phone number or email, not by a part of one."))
                kept = [(key, value) for key, values in request.GET.lists() if key not in refused for value in values]
                return HttpResponseRedirect(request.path + (f"?{urlencode(kept)}" if kept else ""))
        return super().changelist_view(request, extra_context)
