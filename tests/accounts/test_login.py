import pytest

from tests.factories import PASSWORD


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def test_it_logs_in_and_out(client, researcher):
    response = client.post("/accounts/login/", {"username": "researcher", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_it_locks_an_account_after_repeated_failures(client, researcher, axes_on):
    for _ in range(3):
        response = client.post(
            "/accounts/login/",
            {"username": "researcher", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
        )
    assert response.status_code == 429
    assert b"Too many failed log-in attempts" in response.content
    # Even the right password is refused while locked out.
    response = client.post(
        "/accounts/login/", {"username": "researcher", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429


def test_it_sends_a_password_reset_link(client, researcher):
    from django.core import mail

    response = client.post("/accounts/password/reset/", {"email": researcher.email})
    assert response.status_code == 302
    assert "/accounts/password/reset/" in mail.outbox[0].body
