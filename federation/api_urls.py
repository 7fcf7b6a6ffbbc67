from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import api, node_api
from .flare import api as fl_api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("analyses", api.AnalysisViewSet, basename="analysis")
router.register("nodes", api.NodeViewSet, basename="node")
router.register("fl-jobs", fl_api.FlJobViewSet, basename="fl-job")
router.register("models", fl_api.TrainedModelViewSet, basename="trained-model")

urlpatterns = [
    path("node/heartbeat/", node_api.HeartbeatView.as_view(), name="node-heartbeat"),
    path("node/runs/claim/", node_api.ClaimView.as_view(), name="node-claim"),
    path("node/runs/<int:run_id>/result/", node_api.ResultView.as_view(), name="node-result"),
    path(
        "node/runs/<int:run_id>/secure/key/",
        node_api.SecureKeyView.as_view(),
        name="node-secure-key",
    ),
    path(
        "node/runs/<int:run_id>/secure/hold/",
        node_api.SecureHoldView.as_view(),
        name="node-secure-hold",
    ),
    path(
        "node/runs/<int:run_id>/secure/peers/",
        node_api.SecurePeersView.as_view(),
        name="node-secure-peers",
    ),
    path(
        "node/runs/<int:run_id>/secure/masked/",
        node_api.SecureMaskedView.as_view(),
        name="node-secure-masked",
    ),
    path("analysis-types/", api.analysis_types, name="analysis-types"),
    path("fl-params-schema/", fl_api.params_schema, name="fl-params-schema"),
    path("", include(router.urls)),
]
