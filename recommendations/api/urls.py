from django.urls import path

from recommendations.api.views import RecsBatchView, RecsView

urlpatterns = [
    path("recs", RecsView.as_view(), name="recs"),
    path("recs/batch", RecsBatchView.as_view(), name="recs-batch"),
]
