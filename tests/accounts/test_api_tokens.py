import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEvent


def test_it_shows_a_new_token_once_and_stores_only_its_hash(api_as, researcher):
    response = api_as(researcher).post("/api/tokens/", {"name": "notebook"}, format="json")
    assert response.status_code == 201
    raw = response.json()["token"]
    stored = ApiToken.objects.get(user=researcher)
    assert raw not in (stored.token_hash, stored.prefix) and raw.startswith(stored.prefix)
    listing = api_as(researcher).get("/api/tokens/").json()
    assert "token" not in listing["results"][0]
    assert AuditEvent.objects.filter(action="api_token.created").count() == 1


def test_it_authenticates_with_the_token_header(researcher):
    _, raw = ApiToken.issue(user=researcher, name="script")
    client = APIClient()
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 200
    assert response.json()["username"] == "researcher"


def test_it_rejects_a_revoked_token(api_as, researcher):
    token, raw = ApiToken.issue(user=researcher, name="script")
    assert api_as(researcher).delete(f"/api/tokens/{token.pk}/").status_code == 204
    response = APIClient().get("/api/me/", HTTP_AUTHORIZATION=f"Token {raw}")
    assert response.status_code == 401
    assert response.json()["error"]["status"] == 401


def test_it_refuses_a_token_without_a_name(api_as, researcher):
    response = api_as(researcher).post("/api/tokens/", {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_it_hides_other_peoples_tokens(api_as, researcher, outsider):
    token, _ = ApiToken.issue(user=researcher, name="mine")
    assert api_as(outsider).delete(f"/api/tokens/{token.pk}/").status_code == 404


def test_it_creates_a_token_from_the_command_line(researcher, capsys):
    call_command("create_api_token", "researcher")
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiToken.authenticate(last_line).user == researcher


def test_it_refuses_an_unknown_user_on_the_command_line(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_token", "nobody")


def test_the_token_page_creates_and_revokes(client_as, researcher):
    client = client_as(researcher)
    response = client.post("/accounts/tokens/", {"name": "laptop"})
    assert response.status_code == 200
    assert b"shown only this once" in response.content
    token = ApiToken.objects.get(user=researcher)
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
