from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("central/uploads", api.UploadViewSet, basename="central-upload")
router.register("central/versions", api.VersionViewSet, basename="central-version")

urlpatterns = router.urls
