from django.urls import path

from clustering import views

app_name = "clustering"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("predict/", views.predict, name="predict"),
    path("segments/<int:segment_id>/", views.segment_members, name="segment_members"),
    path("segments/<int:segment_id>/edit/", views.segment_edit, name="segment_edit"),
    path("segments/<int:segment_id>/export.csv", views.segment_export, name="segment_export"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/start/", views.run_start, name="run_start"),
    path("runs/compare/", views.run_compare, name="run_compare"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/status/", views.run_status, name="run_status"),
    path("runs/<int:run_id>/activate/", views.run_activate_view, name="run_activate"),
]
