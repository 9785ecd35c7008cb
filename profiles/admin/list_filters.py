"""Sidebar filters of the customer list that stay fast at a million customers.

None of them runs Django's default SELECT DISTINCT over the table to find its choices:
places come from the reference data in profiles.geo (the normalisers store exactly those
names), segments and purposes from their own small tables. Each filter is one indexed
condition: city and province have their own index, a segment is an EXISTS on the unique
(segment, profile) membership key, consent uses the consent selectors' own rules.

Segments and consent live in apps above profiles. This module is part of the admin (a
face, which may call any app's selectors) and imports them only when a filter is used,
so profiles' models, services and selectors never depend on them.
"""
from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from ..geo import CITIES, PROVINCES

_PROVINCE_NAMES = [province.name for province in PROVINCES]
_CITIES_BY_WEIGHT = sorted(CITIES, key=lambda city: (-city.weight, city.name))


class ProvinceFilter(admin.SimpleListFilter):
    title = _("province")
    parameter_name = "province"

    def lookups(self, request, model_admin):
        return [(name, name) for name in _PROVINCE_NAMES]

    def queryset(self, request, queryset):
        return queryset.filter(province=self.value()) if self.value() in _PROVINCE_NAMES else queryset


class CityFilter(admin.SimpleListFilter):
    """The cities of the chosen province, or every known city (largest first)."""

    title = _("city")
    parameter_name = "city"

    def lookups(self, request, model_admin):
        province = request.GET.get(ProvinceFilter.parameter_name)
        cities = [c for c in _CITIES_BY_WEIGHT if c.province == province] if province in _PROVINCE_NAMES else []
        names = [c.name for c in (cities or _CITIES_BY_WEIGHT)]
        chosen = request.GET.get(self.parameter_name)
        if chosen and chosen not in names:  # typed into the address, or outside the chosen province
            names.insert(0, chosen)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        # Any city name, known or not: an exact match on the indexed, normalised column.
        return queryset.filter(city=self.value()) if self.value() else queryset


class SegmentFilter(admin.SimpleListFilter):
    """Members of a saved segment or static list (its last calculated membership)."""

    title = _("segment")
    parameter_name = "segment"

    def lookups(self, request, model_admin):
        from segments.models import Segment

        return [(str(pk), name) for pk, name in Segment.objects.order_by("name").values_list("pk", "name")[:200]]

    def queryset(self, request, queryset):
        from segments.models import SegmentMembership

        if not self.value():
            return queryset
        if not self.value().isdigit() or self.value() not in {value for value, _label in self.lookup_choices}:
            return queryset.none()  # an unknown segment matches nobody, not everybody
        return queryset.filter(
            Exists(SegmentMembership.objects.filter(segment_id=int(self.value()), profile_id=OuterRef("pk")))
        )


class ConsentFilter(admin.SimpleListFilter):
    """Customers who may be processed for a purpose now: the same rules as exports and
    campaigns (consent counts under the current notice, not expired, a guardian's for a
    minor, no do-not-contact on the purpose's channel)."""

    title = _("consent for")
    parameter_name = "consent"

    def lookups(self, request, model_admin):
        from consent.models import Purpose

        return [(purpose.code, purpose.name) for purpose in Purpose.objects.filter(is_active=True).order_by("code")]

    def queryset(self, request, queryset):
        from consent.selectors import consenting_profiles

        if not self.value():
            return queryset
        if self.value() not in {value for value, _label in self.lookup_choices}:
            return queryset.none()
        return consenting_profiles(queryset, self.value())
