"""Probe finding: /api/docs/, /api/redoc/ and /api/schema/ were public, described the node API, and
the documentation pages had no Content Security Policy.

Now the document and its reader are for logged-in people (the schema answers 401, the page
redirects to the log-in page), the document leaves out /api/node/ (docs/node-agent.md describes it),
and Swagger UI runs under the portal's CSP with no inline script or style. ReDoc is retired.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.federation.factories import make_node

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/api/schema/", "/api/schema/?format=json", "/api/schema/?format=yaml"]
)
def test_anonymous_callers_get_no_schema(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert b"/api/" not in response.content.replace(b'"/api/schema/', b"")


def test_a_node_token_gets_no_schema(hospital_a):
    _node, token = make_node(hospital_a, "a-omop")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Node {token}")
    assert api.get("/api/schema/").status_code == 401


@pytest.mark.parametrize("path", ["/api/docs/", "/api/docs/?script="])
def test_anonymous_visitors_are_sent_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_redoc_is_retired_for_the_one_reader(client, researcher):
    assert client.get("/api/redoc/").status_code == 301
    final = client.get("/api/redoc/", follow=True)
    assert final.redirect_chain[-1][0].startswith("/accounts/login/")
    client.force_login(researcher)
    response = client.get("/api/redoc/", follow=True)
    assert response.redirect_chain == [("/api/docs/", 301)]
    assert b"swagger-ui" in response.content


def test_the_schema_for_people_leaves_the_node_api_out(researcher):
    _token, raw = ApiToken.issue(user=researcher, name="docs")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    document = response.json()
    assert "/api/datasets/" in document["paths"]
    assert not [p for p in document["paths"] if p.startswith("/api/node/")]
    assert "nodeAuth" not in document.get("components", {}).get("securitySchemes", {})


def test_the_docs_page_runs_under_the_portal_csp_without_inline_code(client, researcher):
    client.force_login(researcher)
    portal_csp = client.get("/accounts/dashboard/")["Content-Security-Policy"]
    assert "script-src 'self'" in portal_csp and "unsafe-inline" not in portal_csp

    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == portal_csp
    html = page.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts, "no Swagger UI"
    for attributes, body in scripts:
        assert 'src="/' in attributes and not body.strip(), f"inline script: {attributes}{body}"
    assert "<style" not in html and "style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html)), "a third-party asset"

    initializer = client.get("/api/docs/?script=")
    assert initializer.status_code == 200
    assert initializer["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in initializer.content.decode()  # no call to swagger.io
