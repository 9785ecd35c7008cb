from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from .health import ReadyView, health
from .observability_metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    # Operations (docs/operations.md): liveness, readiness, and metrics for the configured scraper.
    path("health/", health, name="health"),
    path("ready/", ReadyView.as_view(), name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/", include("cdp.api.urls")),  # the partner REST API, its schema and docs
    path("i18n/", include("django.conf.urls.i18n")),  # the admin's language switch posts here
    path("collect/", include("profiles.collect.urls")),  # tracking SDKs (Segment, Sensors Data) with write keys
    path("", include("campaigns.urls")),  # tracked links, unsubscribe and receipts, without a login
]
