"""Partners authenticate with `Authorization: Api-Key <key>` (or `X-Api-Key: <key>`)."""
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from cdp.actors import Actor
from cdp.models import Partner, PartnerAPIKey

from .keys import api_key_find_cached


@dataclass(frozen=True)
class PartnerClient:
    """`request.user` for API calls: the partner and the key it used."""

    partner: Partner
    api_key: PartnerAPIKey

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    @property
    def scopes(self) -> set[str]:
        return set(self.api_key.scopes)

    @property
    def actor(self) -> Actor:
        return Actor.partner(self.partner)


def presented_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, key = header.partition(" ")
    if scheme.lower() == "api-key" and key.strip():
        return key.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class PartnerKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        key = presented_key(request)
        if key is None:
            return None  # NotAuthenticated (401) from the permission check
        from .throttling import failed_auth_count, failed_auth_wait  # throttling imports this module

        wait = failed_auth_wait(request)
        if wait is not None:  # this IP presented bad keys too often this minute: no more checking
            raise exceptions.Throttled(wait, detail=_("Too many calls with an invalid key from your address; "
                                                      "wait a minute."))
        try:
            return self._check(key)
        except exceptions.AuthenticationFailed:
            failed_auth_count(request)
            raise

    def _check(self, key: str):
        api_key = api_key_find_cached(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("This API key is not valid."), code="invalid_key")
        if api_key.is_revoked:
            raise exceptions.AuthenticationFailed(_("This API key was revoked."), code="key_revoked")
        if api_key.has_expired(timezone.now()):
            raise exceptions.AuthenticationFailed(_("This API key has expired."), code="key_expired")
        if not api_key.partner.is_active:
            raise exceptions.AuthenticationFailed(_("This partner is deactivated."), code="partner_inactive")
        return PartnerClient(api_key.partner, api_key), api_key

    def authenticate_header(self, request):
        return "Api-Key"


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = PartnerKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": _("`Authorization: Api-Key <prefix>.<secret>` — the key shown once when it was made."),
        }
