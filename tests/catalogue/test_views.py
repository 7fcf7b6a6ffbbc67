"""HTML pages: search with facets, dataset page, steward forms, review, versions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalogue import services
from catalogue.models import Dataset, Status
from tests.catalogue.factories import COMPLETE, make_draft, make_published

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(steward_a, steward_b, hospital_a, hospital_b, curator):
    """Three published datasets (NSCLC at A, breast at B, prostate at A) and a draft at A."""
    lung = make_published(steward_a, curator, hospital_a, title="Lung cohort", codes=("nsclc",))
    breast = make_published(
        steward_b,
        curator,
        hospital_b,
        codes=("breast",),
        title="Breast screening registry",
        description="Women screened for breast cancer.",
        keywords=["mammography"],
        access_modes=["central_copy"],
        cdm_version="5.3",
        country="FR",
        number_of_individuals=90000,
    )
    prostate = make_published(
        steward_a,
        curator,
        hospital_a,
        codes=("prostate",),
        title="Prostate cancer pathways",
        description="Men treated for prostate cancer.",
        keywords=["PSA"],
        data_categories=["clinical", "imaging"],
        number_of_individuals=100,
    )
    draft = make_draft(steward_a, hospital_a, title="Secret lung draft")
    return {"lung": lung, "breast": breast, "prostate": prostate, "draft": draft}


def titles(response) -> list[str]:
    return [v.title for v in response.context["result"].page.object_list]


def test_anonymous_visitors_find_published_datasets_only(client, catalogue):
    response = client.get(reverse("catalogue:search"))
    assert response.status_code == 200
    assert sorted(titles(response)) == [
        "Breast screening registry",
        "Lung cohort",
        "Prostate cancer pathways",
    ]
    assert b"Secret lung draft" not in response.content


def test_choosing_lung_finds_nsclc_datasets_and_counts_follow_the_hierarchy(client, catalogue):
    response = client.get(reverse("catalogue:search"), {"indication": "lung"})
    assert titles(response) == ["Lung cohort"]
    counts = {f.value: f.count for f in response.context["result"].facets["indication"]}
    assert counts["solid-tumours"] == 3
    assert counts["lung"] == 1 and counts["nsclc"] == 1 and counts["sclc"] == 0
    assert counts["breast"] == 1


def test_facets_combine_and_text_search_matches_word_prefixes(client, catalogue):
    url = reverse("catalogue:search")
    assert titles(client.get(url, {"q": "mammo"})) == ["Breast screening registry"]
    assert titles(client.get(url, {"q": "cancer men"})) == ["Prostate cancer pathways"]
    assert titles(client.get(url, {"q": "ammo"})) == []  # inside a word: no match
    response = client.get(url, {"mode": "federated_analytics", "country": "DE", "cdm": "5.4"})
    assert sorted(titles(response)) == ["Lung cohort", "Prostate cancer pathways"]
    modes = {f.value: f.count for f in response.context["result"].facets["mode"]}
    # Disjunctive: the mode facet counts ignore the mode filter itself.
    assert modes == {"federated_analytics": 2, "federated_learning": 2, "central_copy": 0}
    response = client.get(url, {"category": "imaging"})
    assert titles(response) == ["Prostate cancer pathways"]
    response = client.get(url, {"publisher": "hospital-b"})
    assert titles(response) == ["Breast screening registry"]


def test_sorting_and_pagination(client, catalogue):
    url = reverse("catalogue:search")
    response = client.get(url, {"sort": "size"})
    assert titles(response)[0] == "Breast screening registry"
    response = client.get(url, {"sort": "title", "per_page": 10, "page": 1})
    assert titles(response) == sorted(titles(response))


def test_htmx_requests_get_the_results_fragment(client, catalogue):
    response = client.get(reverse("catalogue:search"), {"q": "lung"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"Lung cohort" in response.content


def test_search_query_count_does_not_grow(
    client, catalogue, steward_a, hospital_a, curator, django_assert_max_num_queries
):
    url = reverse("catalogue:search")
    with django_assert_max_num_queries(8) as small:  # facets and total: one GROUP BY
        client.get(url, {"q": "cohort", "indication": "lung", "mode": "federated_learning"})
    for i in range(6):
        make_published(steward_a, curator, hospital_a, title=f"Extra lung cohort {i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(url, {"q": "cohort", "indication": "lung", "mode": "federated_learning"})
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(url, {"per_page": 50})


def test_outsiders_get_404_for_drafts_and_members_see_them(
    client, client_as, catalogue, outsider, steward_a, curator
):
    url = reverse("catalogue:detail", args=[catalogue["draft"].identifier])
    assert client.get(url).status_code == 404
    assert client_as(outsider).get(url).status_code == 404
    assert client_as(outsider).get(url + "dcat.ttl").status_code == 404
    assert client_as(steward_a).get(url).status_code == 200
    assert client_as(curator).get(url).status_code == 200


def test_the_dataset_page_shows_metadata_versions_and_score(client, catalogue):
    lung = catalogue["lung"]
    response = client.get(reverse("catalogue:detail", args=[lung.identifier]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Lung cohort" in body
    assert "Non-small cell lung cancer" in body
    assert "Federated analytics" in body
    assert "Completeness" in body and "100%" in body
    assert "Version history" in body and "First release." in body


def test_readers_see_the_published_version_while_a_draft_is_edited(
    client, client_as, catalogue, steward_a
):
    lung = catalogue["lung"]
    services.dataset_update(user=steward_a, dataset=lung, data={"title": "Lung cohort (draft)"})
    url = reverse("catalogue:detail", args=[lung.identifier])
    assert "Lung cohort (draft)" not in client.get(url).content.decode()
    assert "Lung cohort (draft)" not in client.get(url + "?view=draft").content.decode()
    steward = client_as(steward_a)
    assert "Lung cohort (draft)" in steward.get(url + "?view=draft").content.decode()


def form_data(**overrides):
    data = {k: v for k, v in COMPLETE.items() if not isinstance(v, list) and k not in ("keywords",)}
    data.update(
        {
            "keywords": "lung, immunotherapy",
            "data_categories": ["clinical"],
            "coding_systems": ["snomed_ct"],
            "access_modes": ["federated_analytics"],
            "applicable_legislation": ["http://data.europa.eu/eli/reg/2016/679/oj"],
            "country": "DE",
            "documentation_url": "https://example.org/docs",
        }
    )
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_steward_registers_and_submits_and_a_curator_publishes(
    client, client_as, hospital_a, steward_a, curator
):
    from catalogue.models import CancerIndication

    nsclc = CancerIndication.objects.get(code="nsclc")
    from federation.models import LinkStatus, NodeDataset
    from tests.federation.factories import make_node

    node, _ = make_node(hospital_a, "omop-a")
    steward = client_as(steward_a)
    form = steward.get(reverse("catalogue:create")).content.decode()
    assert f'value="{node.ref}"' in form  # the node is a choice, not free text
    response = steward.post(
        reverse("catalogue:create"),
        form_data(
            publisher=hospital_a.pk, indications=[nsclc.pk], node_ref=node.ref, action="submit"
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    dataset = Dataset.objects.get(title="Lung cancer cohort")
    assert dataset.status == Status.SUBMITTED
    assert dataset.keywords == ["lung", "immunotherapy"]
    assert {d.kind for d in dataset.distributions.all()} == {"federated_omop", "documentation"}
    # The choice is a proposal the node's site admin confirms.
    assert NodeDataset.objects.get(dataset=dataset, node=node).status == LinkStatus.PROPOSED

    reviewer = client_as(curator)
    queue = reviewer.get(reverse("catalogue:review"))
    assert "Lung cancer cohort" in queue.content.decode()
    response = reviewer.post(
        reverse("catalogue:publish", args=[dataset.identifier]), {"notes": "Welcome"}
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.status == Status.PUBLISHED and dataset.current_version.notes == "Welcome"

    client.logout()
    response = client.get(reverse("catalogue:search"), {"indication": "lung", "q": "lung"})
    assert titles(response) == ["Lung cancer cohort"]


def test_bad_form_input_answers_400_with_field_messages(client_as, hospital_a, steward_a):
    response = client_as(steward_a).post(
        reverse("catalogue:create"),
        form_data(
            publisher=hospital_a.pk, min_typical_age=80, max_typical_age=20, contact_email="x"
        ),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "contact_email" in errors and "max_typical_age" in errors


def test_submitting_an_incomplete_draft_shows_violations_next_to_fields(
    client_as, hospital_a, steward_a
):
    steward = client_as(steward_a)
    response = steward.post(
        reverse("catalogue:create"),
        {
            "publisher": hospital_a.pk,
            "title": "Half done",
            "access_rights": "NON_PUBLIC",
            "action": "submit",
        },
    )
    dataset = Dataset.objects.get(title="Half done")
    assert response.status_code == 302 and "edit" in response["Location"]
    assert dataset.status == Status.DRAFT
    page = steward.get(response["Location"]).content.decode()
    assert "Describe the dataset: who is in it and what it holds." in page
    assert "Give an e-mail address researchers can write to" in page


def _half_done(steward, hospital_a):
    response = steward.post(
        reverse("catalogue:create"),
        {
            "publisher": hospital_a.pk,
            "title": "Half done",
            "access_rights": "NON_PUBLIC",
            "action": "submit",
        },
    )
    return Dataset.objects.get(title="Half done"), response["Location"]


def test_a_refused_submission_is_summarised_at_the_top_in_a_stewards_words(
    client_as, hospital_a, steward_a
):
    steward = client_as(steward_a)
    dataset, edit_url = _half_done(steward, hospital_a)
    page = steward.get(edit_url).content.decode()
    summary = page.split('class="errors error-summary')[1].split("</div>")[0]
    assert 'href="#id_description"' in summary and 'href="#id_indications_0"' in summary
    assert 'href="#id_node_ref"' in summary and "OPTIMA node" in summary
    # Every field needed to submit is marked, not only the title.
    marked = page.count('<span class="visually-hidden"> (required to submit)</span>')
    assert marked >= 11
    # No validator jargon: no "is required" under "Distributions", no raw IRIs or shape text.
    assert "Distributions is required" not in page
    assert "Less than 1 values" not in page and "&lt;http" not in page
    node_field = page.split('for="id_node_ref"')[1].split('<div class="field')[0]
    assert "Give the identifier of the hospital&#x27;s OPTIMA node" in node_field
    detail = steward.get(reverse("catalogue:detail", args=[dataset.identifier])).content.decode()
    assert "Less than 1 values" not in detail


def test_a_field_fixed_since_the_check_no_longer_shows_its_old_message(
    client_as, hospital_a, steward_a
):
    steward = client_as(steward_a)
    dataset, _ = _half_done(steward, hospital_a)
    response = steward.post(
        reverse("catalogue:edit", args=[dataset.identifier]),
        {
            "title": "Half done",
            "access_rights": "NON_PUBLIC",
            "description": "Now described.",
            "contact_email": "not-an-address",
            "action": "save",
        },
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "Describe the dataset" not in page  # fixed in this post
    assert 'id="id_contact_email_error"' in page  # the new problem, next to its field
    assert 'href="#id_contact_email"' in page  # and in the summary
    assert "Tick at least one cancer indication." in page  # still true of the saved draft


def test_stewards_of_another_hospital_cannot_edit(client_as, catalogue, steward_b):
    other = client_as(steward_b)
    lung = catalogue["lung"]
    assert other.get(reverse("catalogue:edit", args=[lung.identifier])).status_code == 404
    assert (
        other.post(reverse("catalogue:submit", args=[catalogue["draft"].identifier])).status_code
        == 404
    )
    assert other.post(reverse("catalogue:restore", args=[lung.identifier, 1])).status_code == 404


def test_non_curators_cannot_publish(client_as, catalogue, steward_a):
    draft = catalogue["draft"]
    services.dataset_submit(user=steward_a, dataset=draft)
    response = client_as(steward_a).post(reverse("catalogue:publish", args=[draft.identifier]))
    assert response.status_code == 404
    draft.refresh_from_db()
    assert draft.status == Status.SUBMITTED


def test_version_diff_and_restore(client_as, catalogue, steward_a, curator):
    lung = catalogue["lung"]
    services.dataset_update(
        user=steward_a, dataset=lung, data={"title": "Lung cohort II", "number_of_individuals": 5}
    )
    services.dataset_submit(user=steward_a, dataset=lung)
    services.dataset_publish(user=curator, dataset=lung, notes="Bigger")
    steward = client_as(steward_a)
    url = reverse("catalogue:versions", args=[lung.identifier])
    response = steward.get(url, {"from": "1", "to": "2"})
    changes = {c.field: (c.old, c.new) for c in response.context["changes"]}
    assert changes == {
        "title": ("Lung cohort", "Lung cohort II"),
        "number_of_individuals": ("4200", "5"),
    }
    response = steward.post(reverse("catalogue:restore", args=[lung.identifier, 1]))
    assert response.status_code == 302
    lung.refresh_from_db()
    assert lung.title == "Lung cohort" and lung.status == Status.DRAFT
    assert lung.current_version.number == 2


def test_steward_list_shows_completeness(client_as, catalogue, steward_a):
    response = client_as(steward_a).get(reverse("catalogue:mine"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Secret lung draft" in body and "100%" in body
    assert "Breast screening registry" not in body


def test_submitting_an_unchanged_published_dataset_explains_instead_of_failing(
    client_as, catalogue, steward_a
):
    lung = catalogue["lung"]
    steward = client_as(steward_a)
    page = steward.get(reverse("catalogue:edit", args=[lung.identifier]))
    form = page.context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value in (None, ""):
            continue
        data[name] = value
    data["action"] = "submit"
    response = steward.post(reverse("catalogue:edit", args=[lung.identifier]), data, follow=True)
    assert response.status_code == 200
    lung.refresh_from_db()
    from accounts.models import AuditEvent

    changed = AuditEvent.objects.filter(action="dataset.updated", object_id=str(lung.pk))
    assert list(changed.values_list("payload", flat=True)) == []
    assert lung.status == Status.PUBLISHED


def test_request_changes_without_a_comment_reveals_nothing_to_outsiders(
    client_as, outsider, steward_a, hospital_a
):
    from tests.catalogue.factories import make_draft

    dataset = make_draft(steward_a, hospital_a)
    response = client_as(outsider).post(
        f"/catalogue/datasets/{dataset.identifier}/request-changes/", {}
    )
    assert response.status_code == 404


def _counts_the_long_way(params) -> tuple[dict[str, dict[str, int]], int]:
    """Each facet counted with its own SQL query (every other filter applied), as a reference."""
    import dataclasses

    from django.db.models import Count

    from catalogue import search_index, selectors
    from catalogue.models import AccessMode, DataCategory, SearchEntry

    tree = selectors._indication_tree()
    base = selectors._text_filter(SearchEntry.objects.all(), params.terms)

    def without(facet: str):
        """The matching entries with every chosen filter but ``facet``'s own."""
        return selectors._Filters(dataclasses.replace(params, **{facet: []}), tree).apply(base)

    expected: dict[str, dict[str, int]] = {}
    through = SearchEntry.indications.through.objects.filter(
        searchentry_id__in=without("indication").values("pk")
    )
    by_id = dict(
        through.values("cancerindication_id")
        .annotate(n=Count("searchentry_id"))
        .values_list("cancerindication_id", "n")
    )
    expected["indication"] = {node.code: by_id.get(node.pk, 0) for node, _, _ in tree}
    for name, field_name, table, codes in (
        ("category", "category_bits", search_index.CATEGORY_BITS, DataCategory.values),
        ("mode", "access_mode_bits", search_index.MODE_BITS, AccessMode.values),
    ):
        rows = without(name).values_list(field_name, flat=True)
        expected[name] = {c: sum(1 for bits in rows if bits & table[c]) for c in codes}
    for name, field_name in (
        ("country", "country"),
        ("cdm", "cdm_version"),
        ("publisher", "publisher__slug"),
    ):
        rows = without(name).values(field_name).annotate(n=Count("pk"))
        expected[name] = {r[field_name]: r["n"] for r in rows if r[field_name]}
    return expected, selectors._Filters(params, tree).apply(base).count()


def test_facet_counts_from_one_grouping_equal_one_query_per_facet(
    client, steward_a, steward_b, hospital_a, hospital_b, curator
):
    import itertools
    import random

    from django.http import QueryDict

    from catalogue import selectors

    rng = random.Random(7)
    kinds = [
        ("nsclc",),
        ("sclc",),
        ("breast",),
        ("prostate",),
        ("nsclc", "breast"),
        ("prostate", "sclc"),
    ]
    mode_sets = [["federated_analytics"], ["central_copy", "federated_learning"], ["central_copy"]]
    category_sets = [["clinical"], ["clinical", "imaging"], ["omics", "pathology"]]
    for i in range(12):
        steward, org = ((steward_a, hospital_a), (steward_b, hospital_b))[i % 2]
        make_published(
            steward,
            curator,
            org,
            codes=kinds[i % len(kinds)],
            title=f"Cohort {i} {'immunotherapy' if i % 3 == 0 else 'registry'}",
            access_modes=mode_sets[i % 3],
            data_categories=category_sets[(i // 2) % 3],
            cdm_version=("5.4", "5.3")[i % 4 == 0],
            country=("DE", "FR", "NL")[i % 3],
        )
    choices = {
        "indication": ["lung", "breast", "sclc", "solid-tumours"],
        "country": ["DE", "FR", "NL"],
        "category": ["clinical", "imaging", "omics"],
        "mode": ["central_copy", "federated_learning", "federated_analytics"],
        "cdm": ["5.3", "5.4"],
        "publisher": [hospital_a.slug, hospital_b.slug],
        "q": ["", "immuno", "cohort registry"],
    }
    combinations = [{}] + [
        {name: rng.sample(values, rng.randint(1, 2)) for name, values in picked}
        for r in (1, 2, 3)
        for picked in itertools.islice(itertools.combinations(choices.items(), r), 0, None, 3)
    ]
    assert len(combinations) > 10
    for combo in combinations:
        query = QueryDict(mutable=True)
        for name, values in combo.items():
            if name == "q":
                query["q"] = values[0]
            else:
                query.setlist(name, values)
        params = selectors.SearchParams.from_querydict(query)
        result = selectors.dataset_search(user=None, params=params)
        expected, total = _counts_the_long_way(params)
        got = {
            name: {f.value: f.count for f in values if f.count or name in {"indication"}}
            for name, values in result.facets.items()
        }
        for name in ("category", "mode"):
            got[name] = {f.value: f.count for f in result.facets[name]}
        assert got == expected, combo
        assert result.total == total == len(result.page.object_list), combo
