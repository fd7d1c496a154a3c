from django.urls import path

from purchases import views

app_name = "purchases"

urlpatterns = [
    path("import/", views.import_upload, name="import"),
    path("import/check/", views.import_check, name="import_check"),
    path("import/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/<int:job_id>/", views.import_status, name="import_status"),
    path("imports/<int:job_id>/retry/", views.import_retry, name="import_retry"),
    path("groups/<slug:group_key>/edit/", views.rfm_strategy_edit, name="rfm_strategy_edit"),
    path("clv/", views.clv_runs, name="clv_runs"),
    path("clv/start/", views.clv_run_start_view, name="clv_start"),
    path("clv/<int:run_id>/", views.clv_run_detail, name="clv_run"),
    path("clv/<int:run_id>/activate/", views.clv_run_activate_view, name="clv_activate"),
]
