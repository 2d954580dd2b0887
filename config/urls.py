"""Top-level URL map: the landing page, admin, staff pages, API schema and docs, health."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import probes
from config.observability.views import metrics

admin.site.site_header = "Reco administration"
admin.site.site_title = "Reco"
# No app sidebar beside every page: at 1280 px the lists need its 300 px (the index and breadcrumbs lead everywhere).
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("admin/", admin.site.urls),
    path("staff/", include("staff.urls")),
    path("api/", include("recommendations.api.urls")),
    path("api/", include("events.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", probes.liveness, name="healthz"),
    path("readyz", probes.readiness, name="readyz"),
    path("metrics", metrics, name="metrics"),  # Prometheus; not public (config/observability/views.py)
]

handler400 = "config.api_errors.handler400"
handler403 = "config.api_errors.handler403"
handler404 = "config.api_errors.handler404"
handler500 = "config.api_errors.handler500"
