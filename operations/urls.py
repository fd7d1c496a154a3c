from django.urls import path

from operations import views

app_name = "operations"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("schedules/new/", views.schedule_edit, name="schedule_new"),
    path("schedules/<int:schedule_id>/", views.schedule_edit, name="schedule_edit"),
    path("schedules/<int:schedule_id>/delete/", views.schedule_remove, name="schedule_delete"),
    path("schedules/<int:schedule_id>/run/", views.schedule_run_now, name="schedule_run_now"),
    path("prune/", views.prune, name="prune"),
    path("predictions/", views.predictions, name="predictions"),
    path("predictions.csv", views.predictions_export, name="predictions_export"),
    path("notifications/", views.preferences, name="preferences"),
]
