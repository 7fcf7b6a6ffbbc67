from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("agreement-templates", api.AgreementTemplateViewSet, basename="agreement-template")
router.register("agreements", api.AgreementViewSet, basename="agreement")
router.register("basket", api.BasketViewSet, basename="basket")
router.register("access-requests", api.AccessRequestViewSet, basename="access-request")
router.register(
    "access-request-attachments",
    api.AttachmentDownloadViewSet,
    basename="governance-attachment",
)
router.register("entitlements", api.EntitlementViewSet, basename="entitlement")
router.register("data-use-register", api.DataUseRegisterViewSet, basename="data-use-register")
router.register(
    "custodian-statistics", api.CustodianStatisticsViewSet, basename="custodian-statistics"
)

urlpatterns = router.urls
