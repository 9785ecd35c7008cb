"""One JSON error shape for every failure of the partner API:

    {"code": "invalid", "message": "…", "fields": {"identities.0.value": ["…"]}}

`code` is stable (partners branch on it), `message` is for people (in the caller's
language), `fields` maps the path of each bad input to its messages (empty otherwise).

400 means the request does not match the OpenAPI schema (a type, a required field, a
length, a format, an unknown field); 422 means it does, but a value is not acceptable to
the platform (an unknown identity kind, tag or purpose, a phone number that is not one, a
date that does not parse, an erased person …). A validation error whose every code is one
of the schema's (SCHEMA_CODES) is a 400, any other a 422; what a service refuses (Django's
ValidationError, raised after the serializers passed the request) is a 422.
Bad input never becomes a 500: Django's own ValidationError (raised by services) is a 400
with the service's code, and anything unexpected is logged and answered in this shape."""
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger("cdp.api")


class ApiError(exceptions.APIException):
    """An error with a stable code the client can act on."""

    def __init__(self, code: str, message, status_code: int = status.HTTP_400_BAD_REQUEST, fields: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.fields = fields or {}
        super().__init__(detail=str(message), code=code)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__("body_too_large", _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
                         status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


# DRF's exception classes → our codes (their default codes are not all stable or clear).
_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_key",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "throttled",
    exceptions.ValidationError: "invalid",
}
VALIDATION_MESSAGE = gettext_lazy("Some fields are not valid; see fields.")
# DRF's field error codes (and ours for the same kind of fault): what the schema describes.
SCHEMA_CODES = frozenset({
    "required", "null", "blank", "invalid", "max_length", "min_length", "max_value", "min_value", "max_digits",
    "max_decimal_places", "max_whole_digits", "max_string_length", "invalid_choice", "not_a_list", "not_a_dict",
    "empty", "date", "datetime", "make_aware", "unknown_field", "parse_error", "invalid_json",
    "too_long", "invalid_datetime",
})


def _leaf_codes(detail) -> list:
    if isinstance(detail, dict):
        return [code for value in detail.values() for code in _leaf_codes(value)]
    if isinstance(detail, list):
        return [code for value in detail for code in _leaf_codes(value)]
    return [getattr(detail, "code", None) or "invalid"]


def validation_status(detail) -> int:
    """400 when any fault is one the schema describes, 422 when all are about the values."""
    codes = _leaf_codes(detail)
    return 400 if not codes or any(code in SCHEMA_CODES for code in codes) else 422


def error_body(code: str, message, fields: dict | None = None) -> dict:
    return {"code": code, "message": str(message), "fields": fields or {}}


def flatten(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"a.0.b": [messages]}; top-level errors under "non_field_errors"."""
    if isinstance(detail, dict):
        found: dict[str, list[str]] = {}
        for key, value in detail.items():
            child = str(key) if not path else f"{path}.{key}"
            if key in ("non_field_errors", "__all__"):
                child = path or "non_field_errors"
            for name, messages in flatten(value, child).items():
                found.setdefault(name, []).extend(messages)
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {path or "non_field_errors": [str(item) for item in detail]} if detail else {}
        found = {}
        for index, item in enumerate(detail):
            for name, messages in flatten(item, f"{path}.{index}" if path else str(index)).items():
                found.setdefault(name, []).extend(messages)
        return found
    return {path or "non_field_errors": [str(detail)]}


def _first_code(detail) -> str | None:
    """The one code of a validation error that has a single message (e.g. identity_taken)."""
    items = []

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        else:
            items.append(getattr(node, "code", None))

    walk(detail)
    return items[0] if len(items) == 1 and items[0] not in (None, "invalid") else None


def django_validation_detail(error: DjangoValidationError):
    if hasattr(error, "error_dict"):
        return {field: [exceptions.ErrorDetail(str(m), code=e.code) for e in errors for m in e]
                for field, errors in error.error_dict.items()}
    return [exceptions.ErrorDetail(str(m), code=e.code) for e in error.error_list for m in e]


def api_exception_handler(exc, context):
    # The serializers checked the request against the schema before any service ran: what a
    # service refuses is about the values (422), whatever its code.
    from_service = isinstance(exc, DjangoValidationError)
    if from_service:
        exc = exceptions.ValidationError(django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApiError):
        response = Response(error_body(exc.code, exc.detail, exc.fields), status=exc.status_code)
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        code = _first_code(exc.detail) or "invalid"
        status_code = 422 if from_service else validation_status(exc.detail)
        if list(fields) == ["non_field_errors"] and len(fields["non_field_errors"]) == 1:
            response = Response(error_body(code, fields["non_field_errors"][0]), status=status_code)
        else:
            response = Response(error_body(code, VALIDATION_MESSAGE, fields), status=status_code)
    elif isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), None)
        detail_code = getattr(exc.detail, "code", None)
        if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.PermissionDenied)) and detail_code not in (
            None, "authentication_failed", "permission_denied"
        ):
            code = detail_code  # our own codes: key_revoked, missing_scope …
        message = exc.detail if not isinstance(exc.detail, (dict, list)) else exc.default_detail
        response = Response(error_body(code or exc.default_code, message), status=exc.status_code)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response["Retry-After"] = str(int(exc.wait) + 1)
    else:
        logger.exception("Unexpected error in the partner API", exc_info=exc)
        response = Response(error_body("server_error", _("Something went wrong on our side. It was logged.")), status=500)
    if isinstance(exc, exceptions.NotAuthenticated):
        response["WWW-Authenticate"] = "Api-Key"
    return response


def json_error(code: str, message, status_code: int) -> JsonResponse:
    """The same shape outside DRF (middleware, unknown URLs)."""
    return JsonResponse(error_body(code, message), status=status_code, json_dumps_params={"ensure_ascii": False})
