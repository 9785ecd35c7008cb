"""Filters of the customer list (?updated_since=&tag=&segment=&city=&lifecycle_stage=)."""
import datetime

import django_filters
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ErrorDetail, ValidationError

from profiles.models import LifecycleStage, Profile, ProfileTag
from profiles.normalisers import normalise_city
from segments.api.access import segments_shared_with
from segments.models import SegmentMembership


class ProfileFilter(django_filters.FilterSet):
    updated_since = django_filters.IsoDateTimeFilter(
        method="filter_updated_since", help_text=_("Only customers changed at or after this time (ISO 8601)"),
    )
    tag = django_filters.CharFilter(method="filter_tag", help_text=_("A tag's slug"))
    segment = django_filters.CharFilter(method="filter_segment", help_text=_("The slug of a segment shared with you"))
    city = django_filters.CharFilter(method="filter_city", help_text=_("City, normalised like imports (上海市 = 上海)"))
    lifecycle_stage = django_filters.ChoiceFilter(choices=LifecycleStage.choices)

    class Meta:
        model = Profile
        fields = ["updated_since", "tag", "segment", "city", "lifecycle_stage"]

    def filter_updated_since(self, queryset, name, value):
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which Python accepts.
        try:
            since = value.astimezone(datetime.UTC)
        except OverflowError:
            raise ValidationError({"updated_since": [ErrorDetail(str(_("This time is out of range.")),
                                                                 code="out_of_range")]}) from None
        return queryset.filter(updated_at__gte=since)

    def filter_tag(self, queryset, name, value):
        return queryset.filter(Exists(ProfileTag.objects.filter(profile_id=OuterRef("pk"), tag__slug=value)))

    def filter_segment(self, queryset, name, value):
        segment = segments_shared_with(self.request.user.partner).filter(slug=value).first()
        if segment is None:  # the same answer for "no such segment" and "not shared with you"
            raise ValidationError({"segment": [ErrorDetail(str(_("No segment with this slug is shared with you.")),
                                                           code="unknown_segment")]})
        return queryset.filter(Exists(SegmentMembership.objects.filter(profile_id=OuterRef("pk"), segment=segment)))

    def filter_city(self, queryset, name, value):
        return queryset.filter(city=normalise_city(value))
