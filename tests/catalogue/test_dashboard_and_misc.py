"""Dashboard sections, steward list query counts, the access button, the PostgreSQL index."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from catalogue import dashboard, services
from catalogue.templatetags.catalogue_tags import request_access_url
from tests.catalogue.factories import make_draft, make_published

pytestmark = pytest.mark.django_db


def test_stewards_see_their_drafts_and_curators_the_queue(
    steward_a, steward_b, hospital_a, curator, researcher
):
    draft = make_draft(steward_a, hospital_a, title="Draft A")
    submitted = make_draft(steward_a, hospital_a, title="Waiting A")
    services.dataset_submit(user=steward_a, dataset=submitted)
    [mine] = dashboard.sections(steward_a)
    assert [i.label for i in mine.items] == ["Draft A"]
    assert draft.identifier in mine.items[0].url
    assert dashboard.sections(steward_b)[0].items == []
    [queue] = dashboard.sections(curator)
    assert [i.label for i in queue.items] == ["Waiting A"]
    assert dashboard.sections(researcher) == []


def test_changes_requested_show_up_for_the_steward(steward_a, hospital_a, curator):
    dataset = make_draft(steward_a, hospital_a, title="Needs work")
    services.dataset_submit(user=steward_a, dataset=dataset)
    services.dataset_request_changes(user=curator, dataset=dataset, comment="More detail")
    [mine] = dashboard.sections(steward_a)
    assert mine.items[0].detail == "Changes requested by a curator"


def test_the_steward_list_has_constant_queries(
    client_as, steward_a, hospital_a, curator, django_assert_max_num_queries
):
    make_published(steward_a, curator, hospital_a)
    client = client_as(steward_a)
    url = reverse("catalogue:mine")
    with django_assert_max_num_queries(20) as first:
        client.get(url)
    for i in range(5):
        make_draft(steward_a, hospital_a, title=f"Draft {i}")
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("Draft ") >= 5


def test_request_access_links_to_governance_when_it_exists(steward_a, hospital_a, curator):
    dataset = make_published(steward_a, curator, hospital_a)
    from django.urls import NoReverseMatch

    try:
        expected = reverse("governance:basket_add") + f"?dataset={dataset.pk}"
    except NoReverseMatch:
        expected = ""  # governance not there yet: the page shows no button
    assert request_access_url(dataset) == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text index")
def test_postgresql_has_gin_indexes_for_text_search():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gin (search_vector)%'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert {"cat_entry_search_gin", "cat_version_search_gin"} <= names
