from django.urls import path

from . import imports, views

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
    path("imports/", imports.ImportCollectionView.as_view(), name="api-imports"),
    path("imports/<int:job_id>/", imports.ImportDetailView.as_view(), name="api-import"),
    path("imports/<int:job_id>/parts/", imports.ImportPartsView.as_view(), name="api-import-parts"),
    path("imports/<int:job_id>/start/", imports.ImportStartView.as_view(), name="api-import-start"),
    path("imports/<int:job_id>/failed-rows/", imports.ImportFailedRowsView.as_view(), name="api-import-failed-rows"),
]
