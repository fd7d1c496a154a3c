from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("import/", views.import_upload, name="import"),
    path("import/columns/", views.import_map, name="import_map"),
    path("import/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/", views.import_history, name="import_history"),
    path("imports/<int:record_id>/undo/", views.import_undo_view, name="import_undo"),
    path("<int:customer_pk>/", views.customer_detail, name="detail"),
]
