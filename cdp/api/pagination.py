"""Cursor pagination for everything that can grow: stable under inserts, no COUNT(*),
and the cursor is opaque. Page size: ?page_size=, capped."""
from django.conf import settings
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    ordering = "-created_at"

    page_size = 100  # for the schema; the settings decide at run time

    def get_page_size(self, request):
        """?page_size=, else CDP_API_PAGE_SIZE; capped at CDP_API_MAX_PAGE_SIZE, never an error."""
        try:
            wanted = int(request.query_params.get(self.page_size_query_param) or settings.CDP_API_PAGE_SIZE)
        except ValueError:
            wanted = settings.CDP_API_PAGE_SIZE
        return max(1, min(wanted, settings.CDP_API_MAX_PAGE_SIZE))

    def decode_cursor(self, request):
        from django.utils.translation import gettext as _
        from rest_framework.exceptions import NotFound

        from .errors import ApiError

        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApiError("invalid_cursor", _("This cursor is not valid; use the next link of the previous page.")) from None
