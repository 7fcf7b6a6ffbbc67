"""django-guardian object permissions are read by the checks, not only written: an analysis may use a
dataset only while both the entitlement row and the guardian permission it keeps in step hold."""

from __future__ import annotations

from datetime import date

import pytest
from guardian.shortcuts import assign_perm, remove_perm

from catalogue import permissions as catalogue_permissions
from catalogue.models import Dataset
from governance import selectors, services
from governance.models import Decision
from tests.governance.factories import active_agreement, complete_draft

pytestmark = pytest.mark.django_db
FA = "federated_analytics"
PERM = "catalogue.run_federated_analysis"


@pytest.fixture
def entitled(researcher, dac_a, hospital_a, institute, dataset_a):
    active_agreement(hospital_a, institute)
    r = complete_draft(researcher, [dataset_a], requested_end_date=date(2030, 6, 30))
    services.access_request_submit(actor=researcher, access_request=r)
    services.decision_approve(actor=dac_a, decision=Decision.objects.get(request=r))
    return researcher


def test_the_catalogue_restrict_reads_the_object_permission(entitled, dataset_a, dataset_b):
    usable = catalogue_permissions.restrict(Dataset.objects.all(), entitled, FA)
    assert list(usable) == [dataset_a]
    assert not catalogue_permissions.allows(dataset_a, entitled, "federated_learning")


def test_an_entitlement_row_without_its_permission_is_not_enough(entitled, dataset_a):
    assert selectors.missing_entitlements(user=entitled, datasets=[dataset_a], access_mode=FA) == []
    remove_perm(PERM, entitled, dataset_a)
    assert selectors.missing_entitlements(user=entitled, datasets=[dataset_a], access_mode=FA) == [
        dataset_a
    ]
    assert list(selectors.entitled_datasets(user=entitled, access_mode=FA)) == []


def test_a_permission_without_an_entitlement_is_not_enough(researcher, dataset_b, platform_admin):
    # A grant written by hand (e.g. in the admin) does not open a dataset without an entitlement.
    assign_perm(PERM, researcher, dataset_b)
    assert catalogue_permissions.allows(dataset_b, researcher, FA)
    assert selectors.missing_entitlements(
        user=researcher, datasets=[dataset_b], access_mode=FA
    ) == [dataset_b]
    # Platform admins hold no bypass for using data.
    assert not catalogue_permissions.allows(dataset_b, platform_admin, FA)
