from django.urls import path

from . import views

urlpatterns = [
    path("purposes/", views.PurposeListView.as_view(), name="api-purposes"),
    path("profiles/<uuid:profile_id>/consent/", views.ProfileConsentView.as_view(), name="api-profile-consent"),
    path("profiles/<uuid:profile_id>/consent/history/", views.ProfileConsentHistoryView.as_view(),
         name="api-profile-consent-history"),
]
