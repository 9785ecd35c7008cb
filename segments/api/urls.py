from django.urls import path

from ..quick.api import SegmentParseView
from . import views

urlpatterns = [
    path("segments/", views.SegmentListView.as_view(), name="api-segments"),
    path("segments/parse/", SegmentParseView.as_view(), name="api-segments-parse"),  # before the slugs
    path("segments/<str:slug>/", views.SegmentDetailView.as_view(), name="api-segment"),
    path("segments/<str:slug>/members/", views.SegmentMembersView.as_view(), name="api-segment-members"),
    path("segments/<str:slug>/members/<uuid:profile_id>/", views.SegmentMembershipView.as_view(),
         name="api-segment-membership"),
]
