from django.contrib import admin
from django.urls import include, path

from accounts import health

from . import api_docs

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", api_docs.schema, name="api-schema"),
    path("api/docs/", api_docs.swagger, name="api-docs"),
    path("api/redoc/", api_docs.redoc, name="api-redoc"),
    path("api/", include("optima_portal.api_urls")),
    path("", include("accounts.urls")),
    path("catalogue/", include("catalogue.urls")),
    path("governance/", include("governance.urls")),
    path("federation/", include("federation.urls")),
    path("cds/", include("cds.urls")),
    path("", include("cds.hooks_urls")),  # HL7 CDS Hooks at /cds-services
    path("feedback/", include("feedback.urls")),
    path("central/", include("central.urls")),
]

handler404 = "accounts.views.page_not_found"
