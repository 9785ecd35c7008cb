"""Partner routes for segments: only those shared with the partner exist for it (a
segment that is not shared answers 404, exactly like one that does not exist)."""
import re

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from cdp.api.errors import ApiError
from cdp.api.schema import error_responses
from cdp.api.views import PartnerGenericView
from cdp.models import Scope
from consent.models import Purpose
from consent.selectors import consenting_profiles
from profiles.models import Identity, Profile, ProfileStatus
from segments.models import Segment, SegmentMembership

from .access import segments_shared_with
from .serializers import MembershipSerializer, MemberSerializer, SegmentSerializer

SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")

PURPOSE = OpenApiParameter(
    "purpose", {"type": "string", "pattern": r"^[-a-zA-Z0-9_]+$", "maxLength": 50}, required=True,
    description=_("The purpose you will use the members for (a purpose code, e.g. email_marketing). It must be "
                  "one of the purposes you are registered for (403 purpose_not_registered otherwise): only "
                  "customers whose consent for it counts right now, and who are not on the do-not-contact list "
                  "for its channel, are returned."),
)
SEGMENT = {"slug": "shanghai-women-sneakers", "name": "上海 女性 喜欢运动鞋", "description": "", "kind": "dynamic",
           "member_count": 12840, "last_calculated_at": "2026-11-28T01:00:00Z"}
MEMBER = {"id": "6f1c2a7e-3b1d-4c55-9d0e-2f8a4b6c9e01", "name": "李娜", "phone": "+8613900139000",
          "email": "li.na@example.com", "identities": [{"kind": "phone", "value": "+8613900139000"}]}


def shared_segment(request, slug: str) -> Segment:
    return get_object_or_404(segments_shared_with(request.user.partner), slug=slug)


def purpose_from(request) -> str:
    """The purpose code asked for: required (400), and one the partner is registered for
    (403, also for a code that names no purpose: registration is checked first)."""
    code = request.query_params.get("purpose", "")
    if not code:
        raise ApiError("purpose_required", _("Say what you will use the members for: ?purpose=<purpose code>."),
                       fields={"purpose": [_("This parameter is required.")]})
    if not SLUG.match(code):
        raise ApiError("invalid", _("A purpose code, e.g. email_marketing."),
                       fields={"purpose": [_("A purpose code, e.g. email_marketing.")]})
    if code not in (request.user.partner.purposes or []):
        # The purpose is not the partner's to declare: staff register it for the partner.
        raise ApiError("purpose_not_registered",
                       _("You are not registered for the purpose “%(code)s”; ask us to register you for it.")
                       % {"code": code}, status.HTTP_403_FORBIDDEN)
    if not Purpose.objects.filter(code=code, is_active=True).exists():  # registered, since retired
        raise ApiError("unknown_purpose", _("Unknown purpose “%(code)s”.") % {"code": code},
                       fields={"purpose": [_("Unknown purpose “%(code)s”.") % {"code": code}]},
                       status_code=status.HTTP_422_UNPROCESSABLE_ENTITY)
    return code


class SegmentListView(PartnerGenericView):
    required_scopes = {"GET": Scope.SEGMENTS_READ}
    serializer_class = SegmentSerializer
    filterset_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no partner
            return Segment.objects.none()
        return segments_shared_with(self.client.partner)

    @extend_schema(operation_id="segments_list", summary=_("Segments shared with you"),
                   description=_("Needs segments:read."),
                   responses={200: SegmentSerializer(many=True), **error_responses(400, 401, 403, 422, 429)},
                   examples=[OpenApiExample("a page", response_only=True,
                                            value={"next": None, "previous": None, "results": [SEGMENT]})])
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SegmentSerializer(page, many=True).data)


class SegmentDetailView(PartnerGenericView):
    required_scopes = {"GET": Scope.SEGMENTS_READ}

    @extend_schema(operation_id="segments_retrieve", summary=_("A segment shared with you"),
                   description=_("Needs segments:read."),
                   responses={200: SegmentSerializer, **error_responses(401, 403, 404, 429)},
                   examples=[OpenApiExample("segment", response_only=True, value=SEGMENT)])
    def get(self, request, slug):
        return Response(SegmentSerializer(shared_segment(request, slug)).data)


class SegmentMembersView(PartnerGenericView):
    required_scopes = {"GET": Scope.SEGMENTS_READ}
    queryset = Profile.objects.none()  # for the schema; the members come from the segment
    serializer_class = MemberSerializer
    filterset_class = None

    @extend_schema(operation_id="segments_members", summary=_("Members of a segment, for a purpose"),
                   description=_("Cursor-paginated. The purpose is required. Needs segments:read."),
                   parameters=[PURPOSE],
                   responses={200: MemberSerializer(many=True), **error_responses(400, 401, 403, 404, 422, 429)},
                   examples=[OpenApiExample("a page", response_only=True,
                                            value={"next": None, "previous": None, "results": [MEMBER]})])
    def get(self, request, slug):
        segment = shared_segment(request, slug)
        purpose = purpose_from(request)
        members = Profile.objects.filter(
            pk__in=SegmentMembership.objects.filter(segment=segment).values("profile_id"))
        members = consenting_profiles(members, purpose).only("uuid", "name", "phone", "email", "created_at")
        members = members.prefetch_related(Prefetch("identities", Identity.objects.only("kind", "value", "profile")))
        page = self.paginate_queryset(members)
        self.audit_count = len(page)
        return self.get_paginated_response(MemberSerializer(page, many=True).data)


class SegmentMembershipView(PartnerGenericView):
    required_scopes = {"GET": Scope.SEGMENTS_READ}

    @extend_schema(operation_id="segments_membership", summary=_("Is this customer a member?"),
                   description=_("True only when the customer is in the segment and consents to the purpose. "
                                 "Needs segments:read."),
                   parameters=[PURPOSE],
                   responses={200: MembershipSerializer, **error_responses(400, 401, 403, 404, 422, 429)},
                   examples=[OpenApiExample("member", response_only=True,
                                            value={"member": True, "since": "2026-10-01T01:00:00Z"})])
    def get(self, request, slug, profile_id):
        segment = shared_segment(request, slug)
        purpose = purpose_from(request)
        profile = get_object_or_404(Profile.objects.exclude(status=ProfileStatus.ERASED), uuid=profile_id)
        self.audit_target = profile.uuid
        membership = SegmentMembership.objects.filter(segment=segment, profile=profile).first()
        consenting = consenting_profiles(Profile.objects.filter(pk=profile.pk), purpose).exists()
        member = membership is not None and consenting
        return Response({"member": member, "since": membership.entered_at if member else None},
                        status=status.HTTP_200_OK)
