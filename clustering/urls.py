from django.urls import path

from clustering import views

app_name = "clustering"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
