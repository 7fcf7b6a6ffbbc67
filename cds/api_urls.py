from django.urls import path

from . import api

urlpatterns = [
    path("cds/pathways/", api.PathwayListApi.as_view(), name="cds-pathway-list"),
    path(
        "cds/pathways/<slug:pathway_id>/", api.PathwayDetailApi.as_view(), name="cds-pathway-detail"
    ),
    path("cds/evaluate/", api.EvaluateApi.as_view(), name="cds-evaluate"),
    path(
        "cds/evaluations/<uuid:evaluation_id>/",
        api.EvaluationDetailApi.as_view(),
        name="cds-evaluation-detail",
    ),
]
