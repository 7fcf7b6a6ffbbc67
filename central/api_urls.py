from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, node_api

router = SimpleRouter()
router.register("central/uploads", api.UploadViewSet, basename="central-upload")
router.register("central/versions", api.VersionViewSet, basename="central-version")

urlpatterns = [
    path("central/node/datasets/", node_api.DatasetsView.as_view(), name="central-node-datasets"),
    path(
        "central/node/datasets/<int:pk>/token/",
        node_api.DatasetTokenView.as_view(),
        name="central-node-token",
    ),
    *router.urls,
]
