from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, notification_api, recovery

router = SimpleRouter()
router.register("organisations", api.OrganisationViewSet, basename="organisation")
router.register("tokens", api.ApiTokenViewSet, basename="api-token")
router.register("audit", api.AuditEventViewSet, basename="audit-event")
router.register("notifications", notification_api.NotificationViewSet, basename="notification")

urlpatterns = [
    path("me/", api.me, name="api-me"),
    path("2fa/recovery-codes/", recovery.recovery_codes_api, name="api-recovery-codes"),
    *router.urls,
]
