"""Refuse oversized API bodies with 413 before anything reads them, and audit the API
calls that never reach a view (413, unknown routes) like those that do."""
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
        if not getattr(request, "cdp_api_audited", False):
            from .views import audit_api_call

            audit_api_call(request, response.status_code, route=request.path_info[:200])
        return response

    def _refused(self, request):
        limit = settings.CDP_API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("invalid_content_length", _("The Content-Length header is not a number."), 400)
        if length > limit:
            return json_error("body_too_large", _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
                              413)
        return None
