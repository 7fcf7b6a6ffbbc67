from __future__ import annotations

import pytest

from accounts.models import Role
from tests.factories import OrganisationFactory, make_member
from tests.governance.factories import published_dataset


@pytest.fixture
def signatory_a(hospital_a):
    return make_member(
        hospital_a, Role.SIGNATORY, username="signatory_a", first_name="Sina", last_name="Signer"
    )


@pytest.fixture
def signatory_i(institute):
    return make_member(
        institute, Role.SIGNATORY, username="signatory_i", first_name="Ivo", last_name="Institute"
    )


@pytest.fixture
def dac_b(hospital_b):
    return make_member(hospital_b, Role.DAC_MEMBER, username="dac_b")


@pytest.fixture
def teammate(institute):
    return make_member(institute, Role.RESEARCHER, username="teammate")


@pytest.fixture
def stranger(db):
    org = OrganisationFactory(name="Elsewhere", slug="elsewhere", country="IT")
    return make_member(org, Role.RESEARCHER, Role.DAC_MEMBER, username="stranger")


@pytest.fixture
def dataset_a(hospital_a):
    return published_dataset(hospital_a, title="NSCLC cohort A")


@pytest.fixture
def dataset_b(hospital_b):
    return published_dataset(
        hospital_b, title="Breast cancer cohort B", modes=("federated_analytics",)
    )
