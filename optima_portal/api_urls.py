"""Every app's API under /api/. Each app exposes ``api_urls.urlpatterns``."""

from django.urls import include, path

from accounts.api import api_root

urlpatterns = [
    path("", api_root, name="api-root"),
    path("", include("accounts.api_urls")),
    path("", include("catalogue.api_urls")),
    path("", include("governance.api_urls")),
    path("", include("federation.api_urls")),
    path("", include("cds.api_urls")),
    path("", include("feedback.api_urls")),
    path("", include("central.api_urls")),
]
