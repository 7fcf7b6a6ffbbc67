from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("tokens", api.ApiTokenViewSet, basename="api-token")
router.register("audit", api.AuditEventViewSet, basename="audit-event")

urlpatterns = [path("me/", api.me, name="api-me"), *router.urls]
