"""Top-level URL map: admin, staff pages, API schema and docs, health."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from staff.views import healthz

admin.site.site_header = "Reco administration"
admin.site.site_title = "Reco"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("staff/", include("staff.urls")),
    path("api/", include("recommendations.api.urls")),
    path("api/", include("events.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
]
