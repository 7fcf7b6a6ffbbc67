"""Probe finding: ``import_dcat`` took over another hospital's dataset.

A file naming another organisation as publisher (or another publisher's identifier) overwrote
that organisation's published dataset without review and reassigned its committee. Imports now
act as a named user (``--as``) with that user's steward rights, refuse anything of another
publisher (non-zero exit, nothing written, audited), never create organisations, and land as
drafts that go through review.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF

from accounts.models import AuditEvent, Organisation
from catalogue import export, rdf
from catalogue.models import Dataset, DatasetVersion, Status
from tests.catalogue.factories import make_published

pytestmark = pytest.mark.django_db


@pytest.fixture
def victim(steward_b, curator, hospital_b):
    """Hospital B's published dataset, decided on by B's own committee."""
    return make_published(
        steward_b,
        curator,
        hospital_b,
        title="Hospital B lung cohort",
        data_access_committee=hospital_b,
    )


def dataset_node(graph, identifier: str):
    return next(graph.subjects(DCTERMS.identifier, Literal(identifier)))


def set_one(graph, subject, predicate, value) -> None:
    graph.remove((subject, predicate, None))
    graph.add((subject, predicate, value))


def hostile_file(tmp_path, victim, *, mutate) -> str:
    graph = export.full_graph()
    mutate(graph, dataset_node(graph, victim.identifier))
    path = tmp_path / "hostile.ttl"
    path.write_text(graph.serialize(format="turtle"), encoding="utf-8")
    return str(path)


def assert_untouched(victim) -> None:
    before_version = victim.current_version_id
    victim.refresh_from_db()
    assert victim.status == Status.PUBLISHED
    assert victim.title == "Hospital B lung cohort"
    assert victim.current_version_id == before_version
    assert victim.current_version.title == "Hospital B lung cohort"
    assert victim.data_access_committee_id == victim.publisher_id
    assert DatasetVersion.objects.filter(dataset=victim).count() == 1


def test_a_steward_of_a_cannot_overwrite_bs_dataset_or_its_committee(
    tmp_path, victim, steward_a, hospital_a, hospital_b
):
    def mutate(graph, node):
        set_one(graph, node, DCTERMS.title, Literal("Hijacked", lang="en"))
        set_one(graph, node, rdf.optima_ns().dataAccessCommittee, rdf.organisation_uri(hospital_a))

    path = hostile_file(tmp_path, victim, mutate=mutate)
    with pytest.raises(CommandError, match=r"refused\. Nothing was imported"):
        call_command("import_dcat", path, "--as", steward_a.get_username())
    assert_untouched(victim)
    event = AuditEvent.objects.get(action="dataset.import_refused")
    assert event.actor == steward_a and event.organisation == hospital_b
    assert event.object_id == str(victim.pk)
    assert "not a data steward of hospital-b" in event.payload["reason"]


def test_claiming_bs_identifier_for_a_is_refused(tmp_path, victim, steward_a, hospital_a, capsys):
    path = hostile_file(
        tmp_path,
        victim,
        mutate=lambda g, node: set_one(
            g, node, DCTERMS.publisher, rdf.organisation_uri(hospital_a)
        ),
    )
    with pytest.raises(CommandError):
        call_command("import_dcat", path, "--as", steward_a.get_username())
    assert (
        f"refused  {victim.identifier}: a dataset of another publisher" in capsys.readouterr().err
    )
    assert_untouched(victim)


def test_one_refusal_writes_nothing_at_all(tmp_path, victim, steward_a, hospital_a):
    def mutate(graph, node):
        set_one(graph, node, DCTERMS.title, Literal("Hijacked", lang="en"))
        # A's own, legitimate dataset in the same file.
        own = URIRef("http://example.org/datasets/a-own")
        for p, o in list(graph.predicate_objects(node)):
            graph.add((own, p, o))
        set_one(graph, own, DCTERMS.identifier, Literal("a-own"))
        set_one(graph, own, DCTERMS.publisher, rdf.organisation_uri(hospital_a))

    path = hostile_file(tmp_path, victim, mutate=mutate)
    with pytest.raises(CommandError):
        call_command("import_dcat", path, "--as", steward_a.get_username())
    assert not Dataset.objects.filter(identifier="a-own").exists()
    assert_untouched(victim)


def test_an_unknown_publisher_is_an_error_and_never_created(tmp_path, victim, steward_a):
    stranger = URIRef("http://example.org/agents/shadow-clinic")

    def mutate(graph, node):
        graph.add((stranger, RDF.type, FOAF.Agent))
        graph.add((stranger, FOAF.name, Literal("Shadow Clinic")))
        graph.add((stranger, DCTERMS.identifier, Literal("shadow-clinic")))
        set_one(graph, node, DCTERMS.identifier, Literal("shadow-dataset"))
        set_one(graph, node, DCTERMS.publisher, stranger)

    count = Organisation.objects.count()
    path = hostile_file(tmp_path, victim, mutate=mutate)
    with pytest.raises(CommandError):
        call_command("import_dcat", path, "--as", steward_a.get_username())
    assert Organisation.objects.count() == count
    assert not Organisation.objects.filter(slug="shadow-clinic").exists()
    assert not Dataset.objects.filter(identifier="shadow-dataset").exists()


def test_bs_own_steward_gets_a_draft_for_review_and_the_published_version_stays(
    tmp_path, victim, steward_b, capsys
):
    path = hostile_file(
        tmp_path,
        victim,
        mutate=lambda g, node: set_one(g, node, DCTERMS.title, Literal("Renamed", lang="en")),
    )
    call_command("import_dcat", path, "--as", steward_b.get_username())
    assert "0 created, 1 updated, 0 skipped" in capsys.readouterr().out
    published = victim.current_version
    victim.refresh_from_db()
    assert victim.status == Status.DRAFT and victim.title == "Renamed"
    assert victim.current_version == published and published.title == "Hospital B lung cohort"
    event = AuditEvent.objects.get(action="dataset.imported")
    assert event.actor == steward_b and event.payload["outcome"] == "updated"
