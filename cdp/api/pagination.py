"""Cursor pagination for everything that can grow: stable under inserts, no COUNT(*),
and the cursor is opaque. Page size: ?page_size=, capped."""
from django.conf import settings
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    ordering = "-created_at"

    page_size = 100  # for the schema; the settings decide at run time

    def get_page_size(self, request):
        """?page_size=, else CDP_API_PAGE_SIZE; capped to 1 … CDP_API_MAX_PAGE_SIZE. Not a
        whole number (the schema says integer) is a 400."""
        from django.utils.translation import gettext as _

        from .errors import ApiError

        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return settings.CDP_API_PAGE_SIZE
        try:
            wanted = int(raw)
        except ValueError:
            message = _("A whole number, e.g. 100.")
            raise ApiError("invalid", message, fields={self.page_size_query_param: [message]}) from None
        return max(1, min(wanted, settings.CDP_API_MAX_PAGE_SIZE))

    def decode_cursor(self, request):
        from django.utils.translation import gettext as _
        from rest_framework.exceptions import NotFound

        from .errors import ApiError

        try:
            return super().decode_cursor(request)
        except NotFound:  # well-formed (any string is), but not one of ours: 422
            raise ApiError("invalid_cursor", _("This cursor is not valid; use the next link of the previous page."),
                           status_code=422) from None
