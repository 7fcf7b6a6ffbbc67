from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("feedback/items", api.FeedbackItemViewSet, basename="feedback-item")

urlpatterns = [
    path("feedback/stats/", api.FeedbackStatsView.as_view(), name="feedback-stats"),
    path(
        "feedback/cds-disagreements/<str:pathway_id>/",
        api.CdsDisagreementsView.as_view(),
        name="feedback-cds-disagreements",
    ),
    *router.urls,
]
