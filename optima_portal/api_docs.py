"""The API's OpenAPI document and its reader, for logged-in people only.

The schema answers 401 to anonymous callers (like every API endpoint); the documentation page
redirects them to the log-in page (like every portal page). Swagger UI runs under the portal's
Content Security Policy: no inline script or style (its initializer is the split view's ``?script``
response, its page style a static file). ReDoc, a second reader of the same document, is retired
(its styling injects inline styles the CSP refuses): /api/redoc/ redirects to /api/docs/.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated


class SchemaView(SpectacularAPIView):
    permission_classes = [IsAuthenticated]


class SwaggerView(SpectacularSwaggerSplitView):
    permission_classes = [IsAuthenticated]
    template_name = "api/swagger_ui.html"


schema = SchemaView.as_view()
swagger = login_required(SwaggerView.as_view(url_name="api-schema"))
redoc = RedirectView.as_view(pattern_name="api-docs", permanent=True)
