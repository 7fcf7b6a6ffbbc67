from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, notification_api

router = SimpleRouter()
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("tokens", api.ApiTokenViewSet, basename="api-token")
router.register("audit", api.AuditEventViewSet, basename="audit-event")
router.register("notifications", notification_api.NotificationViewSet, basename="notification")

urlpatterns = [path("me/", api.me, name="api-me"), *router.urls]
