"""Partner routes for consent: the ledger is append-only, so recording is the only write."""
from django.db.models import Max
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response

from cdp.api.pagination import ApiCursorPagination
from cdp.api.schema import error_responses
from cdp.api.views import PartnerAPIView, PartnerGenericView
from cdp.models import Scope
from consent.models import ConsentRecord, ConsentSource, Purpose
from consent.selectors import consent_history, consent_states
from consent.services import consent_record
from profiles.api.views import partner_profile

from .serializers import (
    ConsentRecordInSerializer,
    ConsentRecordSerializer,
    ConsentStateSerializer,
    PurposeSerializer,
)

RECORD = {"purpose": "email_marketing", "status": "withdrawn", "notice_version": 2,
          "captured_at": "2026-11-28T09:30:00+08:00", "recorded_at": "2026-11-28T01:30:02Z", "source": "api",
          "expires_at": None, "guardian_consent": False, "recorded_by": "Shop backend"}
STATE = {"purpose": "email_marketing", "name": "邮件营销", "channel": "email", "status": "granted", "allowed": True,
         "reason": "granted", "captured_at": "2026-05-01T10:00:00Z", "expires_at": None, "notice_version": 2,
         "do_not_contact": False}


class PurposeListView(PartnerAPIView):
    required_scopes = {"GET": (Scope.CONSENT_READ, Scope.CONSENT_WRITE, Scope.SEGMENTS_READ)}

    @extend_schema(operation_id="purposes_list", summary=_("Purposes"),
                   description=_("The purposes consent is recorded for, and which the segment members route asks "
                                 "for. Needs consent:read, consent:write or segments:read."),
                   responses={200: PurposeSerializer(many=True), **error_responses(401, 403, 429)},
                   examples=[OpenApiExample("purposes", response_only=True, value=[{
                       "code": "email_marketing", "name": "邮件营销", "description": "", "channel": "email",
                       "lawful_basis": "consent", "latest_notice_version": 2}])])
    def get(self, request):
        purposes = Purpose.objects.filter(is_active=True).annotate(latest=Max("notices__version")).order_by("code")
        return Response([
            {"code": p.code, "name": p.name, "description": p.description, "channel": p.channel,
             "lawful_basis": p.lawful_basis, "latest_notice_version": p.latest}
            for p in purposes
        ])


class ProfileConsentView(PartnerAPIView):
    required_scopes = {"GET": Scope.CONSENT_READ, "POST": Scope.CONSENT_WRITE}

    @extend_schema(operation_id="consent_states", summary=_("A customer's consent, per purpose"),
                   description=_("For every purpose: the current status and whether processing is allowed now, "
                                 "with the reason. Needs consent:read."),
                   responses={200: ConsentStateSerializer(many=True), **error_responses(401, 403, 404, 429)},
                   examples=[OpenApiExample("states", response_only=True, value=[STATE])])
    def get(self, request, profile_id):
        profile = partner_profile(self.client, profile_id)
        self.audit_target = profile.uuid
        return Response([
            {"purpose": row.purpose.code, "name": row.purpose.name, "channel": row.purpose.channel,
             "status": row.state.status if row.state else None, "allowed": row.allowed, "reason": str(row.reason),
             "captured_at": row.state.captured_at if row.state else None,
             "expires_at": row.state.expires_at if row.state else None,
             "notice_version": row.state.notice_version if row.state else None,
             "do_not_contact": row.do_not_contact is not None}
            for row in consent_states(profile)
        ])

    @extend_schema(operation_id="consent_record", summary=_("Record a grant, denial or withdrawal"),
                   description=_("Appends to the customer's consent ledger (entries are never changed) and "
                                 "updates the current state. Send the evidence you hold. Needs consent:write."),
                   request=ConsentRecordInSerializer,
                   responses={201: ConsentRecordSerializer,
                              **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)},
                   examples=[
                       OpenApiExample("a withdrawal", request_only=True, value={
                           "purpose": "email_marketing", "status": "withdrawn",
                           "captured_at": "2026-11-28T09:30:00+08:00",
                           "evidence": {"channel": "email", "reference": "unsubscribe link, campaign 2026-11"}}),
                       OpenApiExample("recorded", response_only=True, status_codes=["201"], value=RECORD),
                   ])
    def post(self, request, profile_id):
        profile = partner_profile(self.client, profile_id, active=True)
        self.audit_target = profile.uuid
        serializer = ConsentRecordInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = consent_record(
            profile=profile, purpose_code=data["purpose"], status=data["status"], source=ConsentSource.API,
            actor=self.actor, captured_at=data.get("captured_at"), notice_version=data.get("notice_version"),
            evidence=data.get("evidence"), expires_at=data.get("expires_at"),
            guardian_consent=data.get("guardian_consent", False),
        )
        return Response(ConsentRecordSerializer(record).data, status=status.HTTP_201_CREATED)


class LedgerPagination(ApiCursorPagination):
    ordering = "-captured_at"


class ProfileConsentHistoryView(PartnerGenericView):
    required_scopes = {"GET": Scope.CONSENT_READ}
    pagination_class = LedgerPagination
    queryset = ConsentRecord.objects.none()  # for the schema; the records come from consent_history
    serializer_class = ConsentRecordSerializer
    filterset_class = None

    @extend_schema(operation_id="consent_history", summary=_("A customer's consent ledger"),
                   description=_("Every entry, newest first, cursor-paginated. Needs consent:read."),
                   responses={200: ConsentRecordSerializer(many=True),
                              **error_responses(400, 401, 403, 404, 422, 429)},
                   examples=[OpenApiExample("a page", response_only=True,
                                            value={"next": None, "previous": None, "results": [RECORD]})])
    def get(self, request, profile_id):
        profile = partner_profile(self.client, profile_id)
        self.audit_target = profile.uuid
        page = self.paginate_queryset(consent_history(profile))
        return self.get_paginated_response(ConsentRecordSerializer(page, many=True).data)
