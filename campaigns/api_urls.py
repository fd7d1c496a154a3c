from django.urls import path

from campaigns import api

app_name = "campaigns_api"

urlpatterns = [
    path("campaigns/<int:campaign_id>/", api.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/outcomes/", api.outcomes, name="outcomes"),
    path("segments/<int:segment_id>/changes/", api.segment_changes, name="segment_changes"),
]
