from django.urls import path

from . import views

urlpatterns = [
    path("profiles/", views.ProfileCollectionView.as_view(), name="api-profiles"),
    path("profiles/lookup/", views.ProfileLookupView.as_view(), name="api-profile-lookup"),
    path("profiles/<uuid:profile_id>/", views.ProfileDetailView.as_view(), name="api-profile"),
    path("profiles/<uuid:profile_id>/tags/", views.ProfileTagsView.as_view(), name="api-profile-tags"),
    path("profiles/<uuid:profile_id>/tags/<str:tag_slug>/", views.ProfileTagDetailView.as_view(),
         name="api-profile-tag"),
    path("profiles/<uuid:profile_id>/recommendations/", views.ProfileRecommendationsView.as_view(),
         name="api-profile-recommendations"),
    path("tags/", views.TagTaxonomyView.as_view(), name="api-tags"),
    path("events/batch/", views.EventBatchView.as_view(), name="api-events-batch"),
]
