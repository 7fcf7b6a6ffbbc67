from __future__ import annotations

import importlib

import pytest

from accounts.models import Role
from tests.factories import OrganisationFactory, make_member

from .factories import FeedbackItemFactory


@pytest.fixture(autouse=True)
def _urls(settings):
    """Use the project's URLconf; fall back to the feedback stand-in while another app's is broken."""
    try:
        importlib.import_module(settings.ROOT_URLCONF)
    except Exception:  # any error in another app's unfinished URLs
        settings.ROOT_URLCONF = "tests.feedback.urls"


@pytest.fixture
def clinician_a(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


@pytest.fixture
def colleague_a(hospital_a):
    """Another person at hospital A (not the author)."""
    return make_member(hospital_a, Role.DATA_STEWARD, username="colleague_a")


@pytest.fixture
def clinician_b(hospital_b):
    return make_member(hospital_b, Role.CLINICIAN, username="clinician_b")


@pytest.fixture
def triager(platform_org):
    """A platform-team member who is not staff (a member of the platform-operator organisation)."""
    return make_member(platform_org, Role.CURATOR, username="triager")


@pytest.fixture
def hospital_c(db):
    return OrganisationFactory(name="Hospital C", slug="hospital-c", country="NL")


@pytest.fixture
def item_a(clinician_a, hospital_a):
    return FeedbackItemFactory(site=hospital_a, author=clinician_a, title="Hospital A's bug")


@pytest.fixture
def shared_item_a(clinician_a, hospital_a):
    return FeedbackItemFactory(
        site=hospital_a, author=clinician_a, shared=True, title="A shared usability issue"
    )
