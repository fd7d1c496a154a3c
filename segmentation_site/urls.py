from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", include("clustering.urls")),
    path("customers/", include("customers.urls")),
    path("purchases/", include("purchases.urls")),
    path("api/", include("clustering.api_urls")),
    path("api/", include("campaigns.api_urls")),
    path("campaigns/", include("campaigns.urls")),
    path("history/", include("audit.urls")),
    path("operations/", include("operations.urls")),
    # Both sign-in forms are throttled by django-axes (see settings.AXES_*).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
]

handler400 = "segmentation_site.errors.bad_request"
handler403 = "segmentation_site.errors.permission_denied"
handler404 = "segmentation_site.errors.page_not_found"
handler500 = "segmentation_site.errors.server_error"
