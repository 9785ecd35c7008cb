"""OpenAPI pieces shared by every route: the error shape, its responses, the guide."""
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

ERRORS = inline_serializer("Error", fields={
    "code": serializers.CharField(help_text=gettext_lazy("Stable machine-readable code, e.g. invalid, not_found")),
    "message": serializers.CharField(help_text=gettext_lazy("For people, in the language asked for")),
    "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    help_text=gettext_lazy("Path of each bad input → its messages")),
})

_ERROR_EXAMPLES = {
    400: ("invalid", gettext_lazy("Some fields are not valid; see fields."),
          {"identities.0.value": ["“138” is not a valid phone number."]}),
    401: ("not_authenticated", gettext_lazy("Send your API key: Authorization: Api-Key <key>."), {}),
    403: ("missing_scope", gettext_lazy("This API key lacks the scope profiles:write."), {}),
    404: ("not_found", gettext_lazy("Not found."), {}),
    409: ("profile_merged", gettext_lazy("This customer was merged into another; use that id."), {}),
    413: ("body_too_large", gettext_lazy("The request body is larger than 2097152 bytes."), {}),
    415: ("unsupported_media_type", gettext_lazy("Send JSON: Content-Type: application/json."), {}),
    422: ("suppressed", gettext_lazy("This person asked to be erased: phone cannot be stored again."), {}),
    429: ("throttled", gettext_lazy("Request was throttled."), {}),
}
_ERROR_DESCRIPTIONS = {
    400: gettext_lazy("Bad input"), 401: gettext_lazy("No key, or an invalid, revoked or expired key"),
    403: gettext_lazy("The key lacks the scope"), 404: gettext_lazy("Not found, or not shared with you"),
    409: gettext_lazy("Conflict"), 413: gettext_lazy("Body too large"), 415: gettext_lazy("Not JSON"),
    422: gettext_lazy("Well-formed, but a value is not acceptable: an unknown identity kind, tag, purpose or "
                      "cursor, a phone or email that is not one, an erased person …"),
    429: gettext_lazy("Rate limit; see Retry-After"),
}


def error_responses(*codes: int) -> dict:
    return {
        code: OpenApiResponse(
            response=ERRORS, description=_ERROR_DESCRIPTIONS[code],
            examples=[OpenApiExample(
                f"error {code}", value={"code": _ERROR_EXAMPLES[code][0], "message": str(_ERROR_EXAMPLES[code][1]),
                                        "fields": _ERROR_EXAMPLES[code][2]},
                response_only=True, status_codes=[str(code)])],
        )
        for code in codes
    }


GUIDE = gettext_lazy("""The partner API of the customer data platform.

**Keys.** Staff create a partner and an API key in the admin (or `manage.py create_partner`); the key is
shown once. Send it on every call: `Authorization: Api-Key <prefix>.<secret>`. Each key carries scopes
(profiles:read, profiles:write, events:write, tags:write, segments:read, consent:read, consent:write,
imports:write);
a call without the scope it needs answers 403 `missing_scope`.

**A typical integration.** 1. `POST /api/v1/profiles/` with the identities you know (phone, email,
CRM id, WeChat ids) and the fields you have: the customer is found or created, and you get its public
`id`. 2. `POST /api/v1/events/batch/` with up to 1,000 events; retries are safe (external_id). 3.
`GET /api/v1/segments/{slug}/members/?purpose=<purpose>` to read a segment shared with you: only
customers who consented to that purpose are returned. 4. `POST /api/v1/profiles/{id}/consent/` with
status withdrawn when a customer withdraws.

**Errors** all look like `{"code": "...", "message": "...", "fields": {"path": ["..."]}}`; branch on
`code`. Messages follow Accept-Language (zh-hans or en). **Lists** use cursor pagination: follow `next`
(`page_size` up to 500). **Limits**: a per-partner rate limit (429 with Retry-After), bodies up to
2 MB (413; an import's file or part up to 64 MB). Every call is audited.""")


ACCESS_POLICY = gettext_lazy("""**Which customers, and which of their data.** Only your customers exist for you:
those you created or updated with `POST /api/v1/profiles/`, those you sent events for, and the members of
segments shared with you; others answer 404 on every route, like customers that do not exist. A key with
the scope profiles:read_all reaches every customer. Staff register your partner for the consent purposes
you work for: phone, email and identities come back only for customers whose consent for one of those
purposes counts right now and who are not on the do-not-contact list of its channel. Otherwise they are
blank (identities: only those you sent yourself) and `contact_withheld` is true; no scope lifts this.
The segment members route answers only for a purpose you are registered for (403
`purpose_not_registered`).""")


ERROR_STATUSES = gettext_lazy("""**400 or 422.** A 400 means the request does not match this schema (a type, a
required field, a length, a format, a field that is not listed); fix the client. A 422 means it does, but a
value is not acceptable here: an unknown identity kind, tag, purpose or cursor, a phone, email or date that
is not one, an erased person (`suppressed`).""")


def close_request_objects(result) -> None:
    """Request bodies take only the fields they list (StrictSerializer refuses others):
    say so with additionalProperties: false on every request object."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False


def add_guide(result, generator, request, public):
    """Postprocessing hook: the guide above, in the reader's language; closed request objects."""
    close_request_objects(result)
    result["info"]["description"] = f"{GUIDE}\n\n{ACCESS_POLICY}\n\n{ERROR_STATUSES}"
    result["info"]["title"] = str(_("CDP partner API"))
    return result
