"""HealthDCAT-AP Release 8: the EU validator stack (vendored in catalogue/shapes/healthdcat-ap) runs
on the demo export, on datasets created through the API with every optional field empty, and on
third-party files; any Violation fails the build."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, RDF

from accounts import demo as accounts_demo
from accounts.models import Membership, MembershipRole, Organisation, Role
from catalogue import demo, export, export_views, rdf, services, validation
from catalogue.models import (
    AccessMode,
    CancerIndication,
    DataCategory,
    Dataset,
    DatasetVersion,
    Distribution,
    LegalBasis,
    Status,
    TermsOfUse,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

EXAMPLES = Path(validation.SHAPES_DIR) / "healthdcat-ap" / "examples"
SYNTAX = {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml"}


def run_validator(path: Path, *flags: str) -> tuple[int, int, str]:
    """The EU stack's own command line (validate.py), as a harvester would run it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        validation.validator().main([str(path), *flags])
    text = out.getvalue()
    last = text.strip().splitlines()[-1]
    counts = dict(part.split("=") for part in last.split())
    return int(counts["violations"]), int(counts["warnings"]), text


def write(tmp_path: Path, graph: Graph, fmt: str, name: str = "export") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    path.write_bytes(export_views.serialize(graph, fmt))
    return path


@pytest.fixture
def demo_catalogue():
    accounts_demo.seed()
    demo.seed()


@pytest.mark.parametrize("fmt", ["ttl", "jsonld", "rdf"])
def test_the_demo_catalogue_has_no_violation_at_the_non_public_level(demo_catalogue, tmp_path, fmt):
    path = write(tmp_path, export.full_graph(access="NON_PUBLIC"), fmt)
    for flags in ((), ("--no-catalog-as-dataset",)):
        violations, _, text = run_validator(path, "--level", "non-public", *flags)
        assert violations == 0, text[-4000:]


def test_the_demo_export_is_all_non_public_and_the_unfiltered_export_validates(
    demo_catalogue, tmp_path
):
    graph = export.full_graph()
    rights = set(graph.objects(None, DCTERMS.accessRights))
    assert rights == {rdf.URIRef(rdf.AUTH + "access-right/NON_PUBLIC")}
    conforms, report = validation.validate_graph(graph)
    assert conforms, report.serialize(format="turtle")[:3000]


def test_a_public_dataset_is_harvested_and_validated_at_the_public_level(
    demo_catalogue, tmp_path, django_user_model
):
    from catalogue import services

    steward = django_user_model.objects.get(username="steward.nl")
    curator = django_user_model.objects.get(username="curator")
    dataset = Dataset.objects.get(identifier="optima-nl-sclc-cohort")
    services.dataset_update(user=steward, dataset=dataset, data={"access_rights": "PUBLIC"})
    services.dataset_submit(user=steward, dataset=dataset)
    services.dataset_publish(user=curator, dataset=dataset, notes="Aggregates made public.")
    graph = export.full_graph(access="PUBLIC")
    assert len(set(graph.subjects(RDF.type, rdf.DCAT.Dataset))) == 1
    for fmt in SYNTAX:
        path = write(tmp_path, graph, fmt)
        for flags in ((), ("--no-catalog-as-dataset",)):
            violations, _, text = run_validator(path, "--level", "public", *flags)
            assert violations == 0, text[-4000:]
    # …and the non-public harvest leaves it out and still validates.
    path = write(tmp_path, export.full_graph(access="NON_PUBLIC"), "ttl", "rest")
    assert run_validator(path, "--level", "non-public")[0] == 0


@pytest.mark.parametrize(("access", "level"), [("NON_PUBLIC", "non-public"), ("PUBLIC", "public")])
def test_a_dataset_created_through_the_api_with_every_optional_field_empty_validates(
    api_as, client_as, steward_a, tmp_path, access, level
):
    response = api_as(steward_a).post(
        "/api/datasets/",
        {"publisher": "hospital-a", "title": "Bare dataset", "access_rights": access},
        format="json",
    )
    assert response.status_code == 201, response.content
    identifier = response.json()["identifier"]
    client = client_as(steward_a)
    for fmt, syntax in SYNTAX.items():
        answer = client.get(f"/catalogue/datasets/{identifier}/dcat.{fmt}")
        assert answer.status_code == 200
        Graph().parse(data=answer.content, format=syntax)
        path = tmp_path / f"bare.{fmt}"
        path.write_bytes(answer.content)
        violations, _, text = run_validator(path, "--level", level)
        assert violations == 0, text[-4000:]
    # The portal's own check agrees (no HealthDCAT-AP violation, only its own mandatory fields).
    report = validation.validate_dataset(Dataset.objects.get(identifier=identifier))
    assert all(v["path"] == "" for v in report["violations"])


def test_a_missing_mandatory_property_is_a_violation_in_plain_words(demo_catalogue, tmp_path):
    graph = export.full_graph(access="NON_PUBLIC")
    one = rdf.dataset_uri("optima-nl-sclc-cohort")
    graph.remove((one, DCTERMS.provenance, None))
    path = write(tmp_path, graph, "ttl")
    violations, _, text = run_validator(path, "--level", "non-public")
    assert violations == 1 and "provenance" in text
    report = validation._results(validation.validate_graph(graph)[1], str(one))
    mine = [r for r in report if r["field"] == "provenance"]
    assert mine and mine[0]["message"] == "Provenance: missing; HealthDCAT-AP requires it."
    assert "Shape" not in mine[0]["message"]


def test_one_dataset_in_every_format_and_by_content_negotiation(client, demo_catalogue):
    base = "/catalogue/datasets/optima-nl-sclc-cohort/"
    ds = rdf.dataset_uri("optima-nl-sclc-cohort")
    for fmt, syntax in SYNTAX.items():
        g = Graph().parse(data=client.get(f"{base}dcat.{fmt}").content, format=syntax)
        assert str(g.value(ds, DCTERMS.title)) == "Small cell lung cancer cohort"
    body = client.get(f"{base}dcat.jsonld").content
    assert isinstance(json.loads(body)["@context"], dict)  # inline: nothing to fetch
    answer = client.get(base, HTTP_ACCEPT="application/ld+json")
    assert answer["Content-Type"].startswith("application/ld+json")
    assert "Accept" in answer["Vary"]
    g = Graph().parse(data=answer.content, format="json-ld")
    assert (ds, RDF.type, rdf.DCAT.Dataset) in g
    answer = client.get(base, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert answer["Content-Type"].startswith("text/html")
    assert client.get(f"{base}dcat.xyz").status_code == 404
    assert (
        client.get("/catalogue/datasets/optima-nl-nsclc-targeted-draft/dcat.jsonld").status_code
        == 404
    )


def test_the_namespace_document_defines_every_optima_term(client, demo_catalogue):
    exported = export.full_graph()
    opt = str(rdf.optima_ns())
    used = {str(p) for p in exported.predicates() if str(p).startswith(opt)}
    used |= {
        str(o)
        for o in exported.objects()
        if str(o).startswith(opt) and "/" not in str(o)[len(opt) :]
    }
    doc = Graph().parse(data=client.get("/catalogue/ns").content, format="turtle")
    defined = {str(s) for s in doc.subjects(rdf.RDFS.isDefinedBy, None)}
    assert used and used <= defined


def test_the_dataset_api_exposes_the_id_analyses_take(api, demo_catalogue):
    item = api.get("/api/datasets/").json()["results"][0]
    assert Dataset.objects.get(identifier=item["identifier"]).pk == item["id"]
    detail = api.get(f"/api/datasets/{item['identifier']}/").json()
    assert detail["id"] == item["id"]


def _wipe() -> None:
    Dataset.objects.update(current_version=None)
    DatasetVersion.objects.all().delete()
    TermsOfUse.objects.all().delete()
    Distribution.objects.all().delete()
    Dataset.objects.all().delete()


def _third_party_publisher():
    """Imports never create organisations: the example's publisher and HDAB are registered first
    (by a platform admin), and a data steward of the publisher imports."""
    registry = Organisation.objects.create(
        name="Belgian National Cancer Registry",
        slug="belgian-national-cancer-registry",
        country="BE",
    )
    Organisation.objects.create(
        name="Belgian Health Data Access Body", slug="belgian-health-data-access-body", country="BE"
    )
    steward = UserFactory(username="registry.steward")
    membership = Membership.objects.create(user=steward, organisation=registry)
    MembershipRole.objects.create(membership=membership, name=Role.DATA_STEWARD)
    curator = get_user_model().objects.get(username="curator")
    return steward, curator


def _import_and_publish(path: Path, steward, curator) -> Dataset:
    call_command("import_dcat", str(path), "--as", steward.get_username())
    dataset = Dataset.objects.get(identifier="EU-HDCA-R7-ONCOLOGY-EHRS-2024")
    assert dataset.status == Status.DRAFT  # an import is a draft until reviewed
    if not dataset.access_modes:
        # What the portal needs beyond HealthDCAT-AP: the steward completes the draft.
        services.dataset_update(
            user=steward,
            dataset=dataset,
            data={
                "data_categories": [DataCategory.CLINICAL],
                "access_modes": [AccessMode.FEDERATED_ANALYTICS],
                "legal_basis": LegalBasis.ART_9_2_J,
                "terms_of_use_text": "Aggregates only; no cell below 10 individuals.",
            },
            indications=list(CancerIndication.objects.filter(code="lung")),
        )
    services.dataset_submit(user=steward, dataset=dataset)
    services.dataset_publish(user=curator, dataset=dataset)
    dataset.refresh_from_db()
    return dataset


@pytest.mark.parametrize("fmt", ["ttl", "jsonld", "rdf"])
def test_the_release_8_example_imports_and_round_trips(db, tmp_path, fmt, capsys):
    accounts_demo.seed()
    steward, curator = _third_party_publisher()
    dataset = _import_and_publish(EXAMPLES / f"example-healthdcat-dataset.{fmt}", steward, curator)
    assert "1 created" in capsys.readouterr().out
    data = dataset.current_version.metadata
    assert data["title"] == "Cross-border oncology EHR cohort 2024"
    assert data["coding_systems"] == ["snomed_ct"]
    assert data["health_categories"] == ["EHRS"]
    assert data["dataset_type"] == "STATISTICAL"
    assert data["provenance"].startswith("The dataset is derived from linked hospital EHR")
    assert data["hdab"] == "belgian-health-data-access-body" and data["country"] == "BE"
    assert data["applicable_legislation"] == ["http://data.europa.eu/eli/reg/2022/868/oj"]
    first = export.dataset_graph(dataset.current_version)
    path = write(tmp_path, first, fmt, "again")
    assert run_validator(path, "--level", "non-public")[0] == 0
    _wipe()
    again = export.dataset_graph(_import_and_publish(path, steward, curator).current_version)
    assert isomorphic(_without_publication_facts(first), _without_publication_facts(again))


def _without_publication_facts(graph: Graph) -> Graph:
    """Version numbers and issue dates belong to publication at this portal, not to the import."""
    kept = Graph()
    for s, p, o in graph:
        if p not in (DCTERMS.issued, DCTERMS.modified, rdf.DCAT.version):
            kept.add((s, p, o))
    return kept
