import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PASSWORD, PERSONA_LOGINS
from accounts.models import Membership, Organisation


@pytest.fixture
def seeded(db):
    call_command("seed_demo", "--quiet-logins")


def test_seed_demo_is_idempotent(seeded):
    counts = (Organisation.objects.count(), Membership.objects.count())
    call_command("seed_demo", "--quiet-logins")
    assert (Organisation.objects.count(), Membership.objects.count()) == counts
    assert (
        Organisation.objects.filter(is_test_site=True, country__in=["DE", "FR", "NL", "SE"]).count()
        == 4
    )


@pytest.mark.parametrize(("persona", "username"), PERSONA_LOGINS)
def test_every_demo_persona_logs_in_and_sees_a_dashboard(client, seeded, persona, username):
    assert client.login(username=username, password=DEMO_PASSWORD)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert b"Your next actions" in response.content


def test_the_dashboard_needs_a_login(client, db):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
