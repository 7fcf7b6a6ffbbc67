"""The governance API: thin DRF views over the same services and selectors as the HTML pages.

One module per idea, mirroring ``governance/views/``; ``api_urls.py`` registers the viewsets
re-exported here.
"""

from .agreements import AgreementTemplateViewSet, AgreementViewSet
from .entitlements import EntitlementViewSet
from .public import CustodianStatisticsViewSet, DataUseRegisterViewSet
from .requests import AccessRequestViewSet, AttachmentDownloadViewSet, BasketViewSet

__all__ = [
    "AccessRequestViewSet",
    "AgreementTemplateViewSet",
    "AgreementViewSet",
    "AttachmentDownloadViewSet",
    "BasketViewSet",
    "CustodianStatisticsViewSet",
    "DataUseRegisterViewSet",
    "EntitlementViewSet",
]
