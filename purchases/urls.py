from django.urls import path

from purchases import views

app_name = "purchases"

urlpatterns = [
    path("import/", views.import_upload, name="import"),
    path("import/check/", views.import_check, name="import_check"),
    path("import/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/<int:job_id>/", views.import_status, name="import_status"),
    path("groups/<slug:group_key>/edit/", views.rfm_strategy_edit, name="rfm_strategy_edit"),
]
