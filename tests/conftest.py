"""Shared fixtures. The three actors of the house style: a data steward of hospital A, a researcher,
and an outsider from hospital B who must see nothing of A's."""

from __future__ import annotations

import os

import pytest

from accounts.models import OrganisationKind, Role
from tests.factories import OrganisationFactory, UserFactory, make_member

SLOW_CHECKS = os.environ.get("OPTIMA_SLOW_CHECKS") == "1"


def pytest_collection_modifyitems(config, items):
    """Slow checks that do not depend on the database (the node image, the R client, the notebook)
    run once in CI, in a step of their own: where ``OPTIMA_SLOW_CHECKS=1``. Elsewhere they are skipped, saying so."""
    if SLOW_CHECKS:
        return
    skip = pytest.mark.skip(
        reason="slow check: runs with OPTIMA_SLOW_CHECKS=1 (a step of its own in CI)"
    )
    for item in items:
        if "slow_check" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _eager_celery(settings, tmp_path):
    """Unit tests run Celery tasks in-process; tests/integration start a real worker instead."""
    from optima_portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = tmp_path / "media"
    # Audit checkpoints belong to one database: each test starts with none.
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    settings.AXES_ENABLED = False
    # force_login users are not asked for a second factor; tests/security/test_two_factor.py
    # switches it back on.
    settings.OTP_ENFORCED = False
    # Rate-limit counters live in the cache: every test starts afresh. The API's anonymous and
    # per-user limits are out of reach here (the permission matrix and the fuzzer send hundreds of
    # requests a minute); tests/security/test_rate_limits.py sets real ones.
    from django.core.cache import cache

    cache.clear()
    settings.API_ANON_RATE = settings.API_USER_RATE = "1000000/min"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def hospital_a(db):
    return OrganisationFactory(name="Hospital A", slug="hospital-a", country="DE")


@pytest.fixture
def hospital_b(db):
    return OrganisationFactory(name="Hospital B", slug="hospital-b", country="FR")


@pytest.fixture
def institute(db):
    return OrganisationFactory(
        name="Research Institute",
        slug="institute",
        country="BE",
        kind=OrganisationKind.RESEARCH,
        is_test_site=False,
    )


@pytest.fixture
def platform_org(db):
    return OrganisationFactory(
        name="Platform",
        slug="platform",
        country="BE",
        kind=OrganisationKind.PLATFORM,
        is_test_site=False,
    )


@pytest.fixture
def steward_a(hospital_a):
    return make_member(hospital_a, Role.DATA_STEWARD, username="steward_a")


@pytest.fixture
def steward_b(hospital_b):
    return make_member(hospital_b, Role.DATA_STEWARD, username="steward_b")


@pytest.fixture
def outsider(hospital_b):
    return make_member(hospital_b, Role.RESEARCHER, username="outsider_b")


@pytest.fixture
def researcher(institute):
    return make_member(institute, Role.RESEARCHER, username="researcher")


@pytest.fixture
def dac_a(hospital_a):
    return make_member(hospital_a, Role.DAC_MEMBER, username="dac_a")


@pytest.fixture
def org_admin_a(hospital_a):
    return make_member(hospital_a, Role.ORG_ADMIN, username="orgadmin_a")


@pytest.fixture
def site_admin_a(hospital_a):
    return make_member(hospital_a, Role.SITE_ADMIN, username="siteadmin_a")


@pytest.fixture
def curator(platform_org):
    return make_member(platform_org, Role.CURATOR, username="curator")


@pytest.fixture
def platform_admin(platform_org):
    return make_member(
        platform_org, Role.ORG_ADMIN, username="platform_admin", is_staff=True, is_superuser=True
    )


@pytest.fixture
def anonymous_user(db):
    return UserFactory.build()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_as():
    from rest_framework.test import APIClient

    def _as(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return _as


@pytest.fixture
def client_as(client):
    def _as(user):
        client.force_login(user)
        return client

    return _as
