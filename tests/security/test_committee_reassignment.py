"""Probe finding: a steward could hand the decision on a dataset to any organisation's committee.

``data_access_committee`` may only name the publisher itself or an organisation the publisher
designates (``Organisation.designated_committees``), checked on every write: API create and PATCH,
the edit form, the service, restoring an old version and the DCAT import.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Organisation
from catalogue import services
from catalogue.models import Dataset
from tests.catalogue.factories import make_draft, make_published
from tests.catalogue.test_api import URL, payload
from tests.catalogue.test_views import form_data
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(steward_a, hospital_a):
    return make_draft(steward_a, hospital_a)


@pytest.fixture
def regional_dac(hospital_a):
    """A regional committee hospital A has designated to decide on its data."""
    committee = OrganisationFactory(name="Regional DAC", slug="regional-dac")
    hospital_a.designated_committees.add(committee)
    return committee


def _committee(dataset) -> int | None:
    return Dataset.objects.get(pk=dataset.pk).data_access_committee_id


def test_it_refuses_another_organisations_committee_through_the_api(
    api_as, steward_a, draft, hospital_a, hospital_b
):
    response = api_as(steward_a).patch(
        f"{URL}{draft.identifier}/", {"data_access_committee": "hospital-b"}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "data_access_committee" in error["fields"]
    assert "not a data access committee Hospital A designates" in " ".join(
        error["fields"]["data_access_committee"]
    )
    assert _committee(draft) == hospital_a.pk


def test_it_refuses_it_at_creation_too(api_as, steward_a, hospital_a, hospital_b):
    response = api_as(steward_a).post(
        URL, payload(data_access_committee="hospital-b"), format="json"
    )
    assert response.status_code == 400
    assert "data_access_committee" in response.json()["error"]["fields"]
    assert not Dataset.objects.filter(title="API lung registry").exists()


def test_it_refuses_it_through_the_edit_form(client_as, steward_a, draft, hospital_a, hospital_b):
    page = client_as(steward_a).get(reverse("catalogue:edit", args=[draft.identifier]))
    assert list(page.context["form"].fields["data_access_committee"].queryset) == [hospital_a]
    response = client_as(steward_a).post(
        reverse("catalogue:edit", args=[draft.identifier]),
        form_data(data_access_committee=hospital_b.pk),
    )
    assert response.status_code == 400
    assert response.context["form"].errors["data_access_committee"]
    assert _committee(draft) == hospital_a.pk


def test_it_refuses_it_in_the_service(steward_a, draft, hospital_a, hospital_b):
    with pytest.raises(ValidationError) as exc:
        services.dataset_update(
            user=steward_a, dataset=draft, data={"data_access_committee": hospital_b}
        )
    assert "data_access_committee" in exc.value.message_dict
    assert _committee(draft) == hospital_a.pk


def test_a_designated_committee_is_accepted(
    api_as, client_as, steward_a, draft, hospital_a, regional_dac
):
    response = api_as(steward_a).patch(
        f"{URL}{draft.identifier}/", {"data_access_committee": "regional-dac"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert _committee(draft) == regional_dac.pk
    page = client_as(steward_a).get(reverse("catalogue:edit", args=[draft.identifier]))
    choices = set(page.context["form"].fields["data_access_committee"].queryset)
    assert choices == {hospital_a, regional_dac}


def test_restoring_a_version_rechecks_the_committee(steward_a, curator, hospital_a, regional_dac):
    dataset = make_published(steward_a, curator, hospital_a, data_access_committee=regional_dac)
    hospital_a.designated_committees.remove(regional_dac)
    services.dataset_update(user=steward_a, dataset=dataset, data={"data_access_committee": None})
    with pytest.raises(ValidationError) as exc:
        services.dataset_restore_version(
            user=steward_a, dataset=dataset, version=dataset.current_version
        )
    assert "data_access_committee" in exc.value.message_dict
    assert _committee(dataset) is None


def test_the_import_refuses_a_dataset_naming_an_undesignated_committee(
    steward_a, hospital_a, hospital_b
):
    """The import goes through the lifecycle services, so the committee rule refuses it."""
    with pytest.raises(ValidationError) as exc:
        services.dataset_import(
            user=steward_a,
            publisher=hospital_a,
            data={
                "identifier": "imported-1",
                "title": "Imported",
                "data_access_committee": "hospital-b",
            },
            source="test",
        )
    assert "data_access_committee" in exc.value.message_dict
    assert not Dataset.objects.filter(identifier="imported-1").exists()
    assert Organisation.objects.get(pk=hospital_a.pk).designates(hospital_a)
