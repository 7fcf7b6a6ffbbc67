"""A stand-in URLconf for the feedback tests while another app's unfinished URLs do not import.

tests/feedback/conftest.py uses it only when ``optima_portal.urls`` fails to import; the routes and
names are the real ones (accounts, feedback, the API schema).
"""

import importlib

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import health

api = [path("", include("accounts.api_urls")), path("", include("feedback.api_urls"))]
others = []
for label in ("catalogue", "governance", "federation", "cds"):
    try:
        importlib.import_module(f"{label}.urls")
    except Exception:  # leave out an app whose URLs do not import yet
        continue
    others.append(path(f"{label}/", include(f"{label}.urls")))

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(api)),
    path("", include("accounts.urls")),
    path("feedback/", include("feedback.urls")),
    *others,
]

handler404 = "accounts.views.page_not_found"
