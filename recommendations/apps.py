from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendation models"

    def ready(self) -> None:
        from recommendations.serving import catalog_cache  # noqa: F401  (connects the catalog-change signals)
