"""Top-level routes: the admin and version 1 of the API; error pages are JSON under /api/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(pattern_name="api-root")),
    path("api/v1/", include("refresh_project.api_router")),
    path("api/v1/manual/refresh/", include("refresh.api.urls")),
    path("api/v1/manual/refresh/", include("notifications.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Our ReDoc page drops the template's Google Fonts link, so it loads offline.
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="refresh/redoc.html"),
        name="api-redoc",
    ),
]

handler400 = "core.api.errors.bad_request"
handler403 = "core.api.errors.permission_denied"
handler404 = "core.api.errors.page_not_found"
handler500 = "core.api.errors.server_error"
