"""Refuse oversized API bodies with 413 before anything reads them, refuse URLs no
database can store (NUL bytes), answer every failure under /api/ in the stable JSON error
shape (never Django's HTML 500 page), and audit the API calls that never reach a view
(413, unknown routes) like those that do."""
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import json_error


class ApiBodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith("/api/v"):
            return self.get_response(request)
        response = self._refused(request) or self.get_response(request)
        if response.status_code >= 500 and not response.get("Content-Type", "").startswith("application/json"):
            # An exception outside DRF's handler became Django's HTML 500 page: partners get JSON.
            response = json_error("server_error", _("Something went wrong on our side. It was logged."),
                                  response.status_code)
        if not getattr(request, "cdp_api_audited", False):
            from .views import audit_api_call

            audit_api_call(request, response.status_code, route=request.path_info[:200])
        return response

    def _refused(self, request):
        raw_query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path_info or b"\x00" in unquote_to_bytes(raw_query):
            return json_error("invalid_url", _("The URL may not contain the NUL character (%00)."), 400)
        limit = settings.CDP_API_MAX_BODY_BYTES
        if request.method == "POST" and request.path_info.startswith("/api/v1/imports/"):
            limit = max(limit, settings.CDP_IMPORT_PART_MAX_BYTES)  # files (or their parts) for imports
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("invalid_content_length", _("The Content-Length header is not a number."), 400)
        if length > limit:
            return json_error("body_too_large", _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
                              413)
        return None
