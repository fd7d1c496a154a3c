from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_new, name="campaign_new"),
    path("plan/", views.plan, name="plan"),
    path("<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
    path("<int:campaign_id>/export.csv", views.campaign_export, name="campaign_export"),
    path("<int:campaign_id>/strategies.csv", views.campaign_strategies, name="campaign_strategies"),
    path("<int:campaign_id>/outcomes/", views.outcomes_upload, name="outcomes_upload"),
]
