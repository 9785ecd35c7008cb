from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("r/<str:token>", views.click, name="click"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("campaigns/receipts/<int:destination_id>/", views.receipts, name="receipts"),
]
