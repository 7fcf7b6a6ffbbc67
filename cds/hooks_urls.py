"""HL7 CDS Hooks endpoints, mounted at the site root (the spec wants ``{base}/cds-services``)."""

from django.urls import path

from . import hooks

urlpatterns = [
    path("cds-services", hooks.DiscoveryView.as_view(), name="cds-hooks-discovery"),
    path("cds-services/<slug:service_id>", hooks.ServiceView.as_view(), name="cds-hooks-service"),
    path(
        "cds-services/<slug:service_id>/feedback",
        hooks.FeedbackView.as_view(),
        name="cds-hooks-feedback",
    ),
]
