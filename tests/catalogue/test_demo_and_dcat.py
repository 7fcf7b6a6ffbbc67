"""Demo seeding, the DCAT-AP export (SHACL conformance, formats, paging) and per-dataset Turtle."""

from __future__ import annotations

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS, RDF

from accounts import demo as accounts_demo
from catalogue import demo, export, rdf, validation
from catalogue.models import Dataset, DatasetVersion, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_catalogue():
    accounts_demo.seed()
    demo.seed()


def test_seed_is_idempotent_and_realistic(demo_catalogue):
    assert demo.seed() == []
    published = Dataset.objects.filter(status=Status.PUBLISHED)
    assert published.count() == 12
    assert Dataset.objects.filter(status=Status.DRAFT).count() == 4
    assert set(published.values_list("publisher__slug", flat=True)) == {
        "de-hospital",
        "fr-hospital",
        "nl-hospital",
        "se-hospital",
    }
    modes = {m for d in published for m in d.access_modes}
    assert modes == {"federated_analytics", "federated_learning", "central_copy"}
    assert set(published.values_list("cdm_version", flat=True)) == {"5.3", "5.4"}
    assert DatasetVersion.objects.filter(is_listed=True).count() == 12


def test_the_demo_export_conforms_to_the_dcat_ap_shapes(demo_catalogue):
    graph = export.full_graph()
    conforms, results = validation.validate_graph(graph)
    assert conforms, results.serialize(format="turtle")[:3000]
    datasets = set(graph.subjects(RDF.type, rdf.DCAT.Dataset))
    assert len(datasets) == 12


def test_dropping_a_mandatory_property_breaks_conformance(demo_catalogue):
    graph = export.full_graph()
    one = next(iter(graph.subjects(RDF.type, rdf.DCAT.Dataset)))
    graph.remove((one, DCTERMS.description, None))
    conforms, results = validation.validate_graph(graph)
    assert not conforms
    assert (None, None, URIRef(str(one))) in results  # the focus node is reported


def test_the_export_carries_versions(demo_catalogue, django_user_model):
    from catalogue import services

    steward = django_user_model.objects.get(username="steward.de")
    curator = django_user_model.objects.get(username="curator")
    dataset = Dataset.objects.get(identifier="optima-de-prostate-treatment")
    services.dataset_update(user=steward, dataset=dataset, data={"title": "Prostate v2"})
    services.dataset_submit(user=steward, dataset=dataset)
    services.dataset_publish(user=curator, dataset=dataset, notes="Bigger cohort")
    g = export.dataset_graph(Dataset.objects.get(pk=dataset.pk).current_version)
    ds = rdf.dataset_uri(dataset.identifier)
    assert str(g.value(ds, rdf.DCAT.version)) == "2"
    assert str(g.value(ds, rdf.ADMS.versionNotes)) == "Bigger cohort"
    assert g.value(ds, rdf.DCAT.previousVersion) == URIRef(f"{ds}/versions/1")
    assert set(g.objects(ds, rdf.DCAT.hasVersion)) == {
        URIRef(f"{ds}/versions/1"),
        URIRef(f"{ds}/versions/2"),
    }


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("/catalogue/dcat.ttl", "turtle"),
        ("/catalogue/dcat.jsonld", "json-ld"),
        ("/catalogue/dcat.rdf", "xml"),
    ],
)
def test_every_format_parses_to_the_same_catalogue(client, demo_catalogue, path, fmt):
    response = client.get(path)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    g = Graph().parse(data=body, format=fmt)
    assert len(set(g.subjects(RDF.type, rdf.DCAT.Dataset))) == 12
    assert (rdf.catalog_uri(), RDF.type, rdf.DCAT.Catalog) in g


def test_content_negotiation(client, demo_catalogue):
    response = client.get("/catalogue/dcat", HTTP_ACCEPT="application/ld+json")
    assert response["Content-Type"].startswith("application/ld+json")
    assert "Accept" in response["Vary"]
    response = client.get("/catalogue/dcat", HTTP_ACCEPT="application/rdf+xml;q=0.5, text/turtle")
    assert response["Content-Type"].startswith("text/turtle")
    assert export.negotiate("application/rdf+xml") == "rdf"
    assert export.negotiate("*/*") == "ttl"


def test_hydra_paging(client, demo_catalogue):
    g = Graph().parse(
        data=client.get("/catalogue/dcat.jsonld", {"page": 2, "per_page": 5}).content,
        format="json-ld",
    )
    assert len(set(g.subjects(RDF.type, rdf.DCAT.Dataset))) == 5
    page = next(g.subjects(RDF.type, rdf.HYDRA.PagedCollection))
    assert int(g.value(page, rdf.HYDRA.totalItems)) == 12
    assert "page=3" in str(g.value(page, rdf.HYDRA.nextPage))
    assert "page=1" in str(g.value(page, rdf.HYDRA.previousPage))


def test_streamed_turtle_is_batched(client, demo_catalogue, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 5)
    response = client.get("/catalogue/dcat.ttl")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 2 + 3  # prefixes, catalog, three batches of at most five
    g = Graph().parse(data=b"".join(chunks), format="turtle")
    assert len(set(g.subjects(RDF.type, rdf.DCAT.Dataset))) == 12


def test_one_dataset_in_turtle(client, demo_catalogue):
    response = client.get("/catalogue/datasets/optima-nl-sclc-cohort/dcat.ttl")
    g = Graph().parse(data=response.content, format="turtle")
    ds = rdf.dataset_uri("optima-nl-sclc-cohort")
    assert str(g.value(ds, DCTERMS.title)) == "Small cell lung cancer cohort"
    draft = client.get("/catalogue/datasets/optima-nl-nsclc-targeted-draft/dcat.ttl")
    assert draft.status_code == 404
