from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("segments/<int:segment_id>/", views.segment_history, name="segment_history"),
    path(
        "segments/<int:segment_id>/changes.csv",
        views.segment_changes_csv,
        name="segment_changes_csv",
    ),
    path(
        "segments/<int:segment_id>/versions/<int:version_id>/restore/",
        views.version_restore,
        name="version_restore",
    ),
]
