from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("datasets", api.DatasetViewSet, basename="catalogue-dataset")

urlpatterns = router.urls
