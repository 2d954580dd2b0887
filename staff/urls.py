"""Staff pages under /staff/ (linked from the admin's index)."""

from django.urls import path

from staff import views

app_name = "staff"

urlpatterns = [
    path("", views.index, name="index"),
    path("preview/", views.preview, name="preview"),
    path("models/", views.models, name="models"),
    path("models/<int:version_id>/activate/", views.model_activate, name="model-activate"),
    path("models/<str:kind>/rollback/", views.model_rollback, name="model-rollback"),
    path("jobs/", views.jobs, name="jobs"),
    path("experiments/", views.experiments, name="experiments"),
    path("health/", views.health_page, name="health"),
    path("health.json", views.health_json, name="health-json"),
]
