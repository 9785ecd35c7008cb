"""Scopes: every view names the scope each of its actions needs (`required_scopes`)."""
from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions

from .authentication import PartnerClient


class HasScope(permissions.BasePermission):
    """Authenticated with a partner key that carries the scope the action needs.

    `view.required_scopes` maps a method (GET, POST, DELETE …) or "*" to a scope, or to a
    tuple of scopes of which any one is enough."""

    def has_permission(self, request, view):
        client = request.user
        if not isinstance(client, PartnerClient):
            raise exceptions.NotAuthenticated(_("Send your API key: Authorization: Api-Key <key>."))
        method = "GET" if request.method == "HEAD" else request.method  # HEAD runs the GET handler
        needed = view.required_scopes.get(method, view.required_scopes.get("*"))
        if needed is None:
            return True  # OPTIONS and the like
        needed = (needed,) if isinstance(needed, str) else tuple(needed)
        if not client.scopes & set(needed):
            raise exceptions.PermissionDenied(
                _("This API key lacks the scope %(scope)s.") % {"scope": " or ".join(needed)}, code="missing_scope"
            )
        return True
