"""/api/: the v1 routes of every app, the OpenAPI schema and the docs."""
from django.urls import include, path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .errors import json_error


@csrf_exempt  # a JSON 404 for any method, never Django's HTML CSRF page
def not_found(request, *args, **kwargs):
    return json_error("not_found", _("There is no such API route. See /api/docs/."), 404)


v1 = [
    path("", include("profiles.api.urls")),
    path("", include("segments.api.urls")),
    path("", include("consent.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^", not_found),
]
