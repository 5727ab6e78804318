"""Top-level routes: the admin and version 1 of the API."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/manual/refresh/", include("refresh.api.urls")),
    path("api-auth/", include("rest_framework.urls")),
]
