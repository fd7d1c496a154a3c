from django.urls import path

from clustering import api

app_name = "api"

urlpatterns = [
    path("predict/", api.predict, name="predict"),
    path("segments/", api.segments, name="segments"),
    path("runs/<int:run_id>/", api.run_detail, name="run_detail"),
    path("customers/<path:customer_id>/", api.customer_detail, name="customer_detail"),
    path("ping/", api.ping, name="ping"),
    path("openapi.json", api.openapi, name="openapi"),
]
