"""The base of every partner API view: key authentication, scopes, the partner's rate
limit, and one audit row per call."""
import logging
from contextlib import contextmanager

from django.db import DatabaseError, transaction
from django.utils import translation
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from cdp.actors import Actor
from cdp.models import AuditLog
from cdp.one_statement import Statement

from .authentication import PartnerClient, PartnerKeyAuthentication, presented_key
from .pagination import ApiCursorPagination
from .parsers import StrictJSONParser
from .permissions import HasScope
from .throttling import PartnerRateThrottle, failed_auth_audit_due

logger = logging.getLogger("cdp.api")


class PartnerAPIView(APIView):
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [PartnerRateThrottle]
    parser_classes = [StrictJSONParser]  # JSON only, and only JSON every database can store
    required_scopes: dict = {}
    # Set by a view to the public id of the customer the call was about.
    audit_target = ""
    audit_count = 1
    audit_status = 200  # for audited_transaction, which writes the row before the response exists

    def initial(self, request, *args, **kwargs):
        # Partners' servers say which language they want (Accept-Language); Chinese otherwise.
        translation.activate(translation.get_language_from_request(request))
        super().initial(request, *args, **kwargs)

    @property
    def client(self) -> PartnerClient:
        return self.request.user

    @property
    def actor(self) -> Actor:
        return self.client.actor

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if not getattr(request._request, "cdp_api_audited", False):
            request._request.cdp_api_audited = True  # the middleware audits only what never got here
            audit_api_call(request, response.status_code, route=self._route(request),
                           target=str(self.audit_target), count=self.audit_count)
        return response

    @contextmanager
    def audited_transaction(self):
        """A write transaction that also holds this call's audit row, so that a write call
        commits once (each commit waits for the disk); set audit_target, audit_count and
        audit_status inside. The row commits with the data or not at all: when the block
        fails, the call is audited afterwards with its error status like any other.

        Yields the transaction's last statement (cdp.one_statement): rows the block adds
        to it and its read go to the database with the audit row in one round trip; the
        read's rows are in `.rows` after the block."""
        closing = Statement()
        with transaction.atomic():
            yield closing
            closing.insert([audit_row(self.request, self.audit_status, route=self._route(self.request),
                                      target=str(self.audit_target), count=self.audit_count)])
            closing.run()
        self.request._request.cdp_api_audited = True

    def _route(self, request) -> str:
        match = getattr(request, "resolver_match", None)
        return match.route if match else request.path_info


def audit_api_call(request, status_code: int, *, route: str, target: str = "", count: int = 1) -> None:
    """One append-only row per call: partner, key prefix, method and route, customer, status.
    A single INSERT, outside the call's own transaction (so failed calls are audited too);
    write calls put theirs inside their transaction instead (audited_transaction).
    Calls without a valid key (401, 429 for an address that sent bad keys too often, or
    calls that never reached a view — 413, unknown routes — with no valid key) write one
    row per client IP and minute instead, which also counts the calls of the minute
    before: bad keys and junk must not fill the append-only log."""
    try:
        client = getattr(request, "_user", None)
        if not isinstance(client, PartnerClient):
            client = _client_of_key(request)  # calls that never reached a view
            if client is None:
                first, before = failed_auth_audit_due(request)
                if first:
                    audit_failed_auth_insert(request, status_code, route=route, calls_before=before)
                return
            request._user = client
        audit_row_insert(request, status_code, route=route, target=target, count=count)
    except DatabaseError:
        # Never turn the partner's answer into an error because the audit insert failed; log it loudly.
        logger.exception("Could not write the audit row for an API call")


def audit_row_insert(request, status_code: int, *, route: str, target: str = "", count: int = 1) -> None:
    audit_row(request, status_code, route=route, target=target, count=count).save(force_insert=True)


def audit_row(request, status_code: int, *, route: str, target: str = "", count: int = 1) -> AuditLog:
    """The call's audit row, unsaved."""
    client = getattr(request, "_user", None)  # never re-run authentication here
    key = presented_key(request) or ""
    partner = client.partner if isinstance(client, PartnerClient) else None
    return AuditLog(
        action=AuditLog.Action.API_CALL, actor_kind="partner", partner=partner,
        actor_label=(partner.name if partner else "")[:150], target=target[:100], count=count,
        details={"key": key.partition(".")[0][:8], "method": request.method, "route": route, "status": status_code},
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


def _client_of_key(request) -> PartnerClient | None:
    """The partner of the key a call presents, when the key is valid now (cached lookup)."""
    from django.utils import timezone

    from .keys import api_key_find_cached

    key = presented_key(request)
    api_key = api_key_find_cached(key) if key else None
    if api_key is None or api_key.is_revoked or api_key.has_expired(timezone.now()) or not api_key.partner.is_active:
        return None
    return PartnerClient(api_key.partner, api_key)


def audit_failed_auth_insert(request, status_code: int, *, route: str, calls_before: int) -> None:
    key = presented_key(request) or ""
    AuditLog.objects.create(
        action=AuditLog.Action.API_AUTH_FAILED, actor_kind="partner", count=1,
        details={"key": key.partition(".")[0][:8], "method": request.method, "route": route, "status": status_code,
                 "calls_in_previous_minute": calls_before},
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )


class PartnerGenericView(PartnerAPIView, GenericAPIView):
    """For list routes: filters and cursor pagination."""

    pagination_class = ApiCursorPagination
