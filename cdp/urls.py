from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("cdp.api.urls")),  # the partner REST API, its schema and docs
    path("i18n/", include("django.conf.urls.i18n")),  # the admin's language switch posts here
    path("collect/", include("profiles.collect.urls")),  # tracking SDKs (Segment, Sensors Data) with write keys
    path("", include("campaigns.urls")),  # tracked links, unsubscribe and receipts, without a login
]
