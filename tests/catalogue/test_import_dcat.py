"""manage.py import_dcat: round trip, idempotence, atomicity, clear errors."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

from accounts import demo as accounts_demo
from catalogue import demo, export
from catalogue.models import Dataset, DatasetVersion, Distribution, Status, TermsOfUse

pytestmark = pytest.mark.django_db


def empty_catalogue() -> None:
    Dataset.objects.update(current_version=None)
    DatasetVersion.objects.all().delete()
    TermsOfUse.objects.all().delete()
    Distribution.objects.all().delete()
    Dataset.objects.all().delete()


@pytest.fixture
def exported(tmp_path):
    accounts_demo.seed()
    demo.seed()
    graph = export.full_graph()
    path = tmp_path / "catalogue.ttl"
    path.write_text(graph.serialize(format="turtle"), encoding="utf-8")
    return graph, path


def test_export_import_export_is_isomorphic(exported, capsys):
    before, path = exported
    empty_catalogue()
    call_command("import_dcat", str(path))
    assert "12 created, 0 updated, 0 skipped" in capsys.readouterr().out
    after = export.full_graph()
    if not isomorphic(before, after):
        _, only_before, only_after = graph_diff(to_isomorphic(before), to_isomorphic(after))
        pytest.fail(
            "not isomorphic\nonly before:\n"
            + only_before.serialize(format="nt")[:2000]
            + "\nonly after:\n"
            + only_after.serialize(format="nt")[:2000]
        )
    assert Dataset.objects.filter(status=Status.PUBLISHED).count() == 12


def test_importing_twice_changes_nothing(exported, capsys):
    _, path = exported
    empty_catalogue()
    call_command("import_dcat", str(path))
    capsys.readouterr()
    call_command("import_dcat", str(path))
    assert "0 created, 0 updated, 12 skipped" in capsys.readouterr().out
    assert DatasetVersion.objects.count() == 12


def test_a_changed_source_updates_with_a_new_version(exported, capsys):
    _, path = exported
    empty_catalogue()
    call_command("import_dcat", str(path))
    text = path.read_text().replace("Small cell lung cancer cohort", "SCLC cohort (renamed)")
    path.write_text(text)
    capsys.readouterr()
    call_command("import_dcat", str(path))
    assert "0 created, 1 updated, 11 skipped" in capsys.readouterr().out
    dataset = Dataset.objects.get(identifier="optima-nl-sclc-cohort")
    assert dataset.current_version.title == "SCLC cohort (renamed)"
    assert dataset.current_version.number == 2


def test_malformed_rdf_is_rejected_with_a_clear_message_and_nothing_imported(exported, tmp_path):
    _, path = exported
    empty_catalogue()
    broken = tmp_path / "broken.ttl"
    broken.write_text(path.read_text()[:-200] + " <unclosed")
    with pytest.raises(CommandError, match=r"not valid turtle RDF.*Nothing was imported"):
        call_command("import_dcat", str(broken))
    assert Dataset.objects.count() == 0


def test_an_error_half_way_imports_nothing(exported, monkeypatch):
    from catalogue import services

    _, path = exported
    empty_catalogue()
    real = services.dataset_import
    calls = []

    def failing(**kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "dataset_import", failing)
    with pytest.raises(RuntimeError):
        call_command("import_dcat", str(path))
    assert Dataset.objects.count() == 0


def test_missing_file(db):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_dcat", "/nonexistent/catalogue.ttl")


def test_purposes_travel_as_healthdcat_ap_dpv_purpose_and_the_old_term_still_imports(
    exported, capsys
):
    from rdflib import Literal
    from rdflib.namespace import DCTERMS, RDF

    from catalogue import rdf

    graph, path = exported
    purposes = {
        str(graph.value(node, DCTERMS.description))
        for _, node in graph.subject_objects(rdf.DPV.hasPurpose)
        if (node, RDF.type, rdf.DPV.Purpose) in graph
    }
    expected = set(
        DatasetVersion.objects.exclude(metadata__purposes="").values_list(
            "metadata__purposes", flat=True
        )
    )
    assert expected and purposes == expected
    assert not list(graph.subject_objects(rdf.optima_ns().purposes))

    # An export written before the portal used dpv:hasPurpose carried optima:purposes.
    for ds, node in list(graph.subject_objects(rdf.DPV.hasPurpose)):
        text = graph.value(node, DCTERMS.description)
        graph.remove((ds, rdf.DPV.hasPurpose, node))
        graph.remove((node, None, None))
        graph.add((ds, rdf.optima_ns().purposes, Literal(str(text), lang="en")))
    path.write_text(graph.serialize(format="turtle"), encoding="utf-8")
    empty_catalogue()
    call_command("import_dcat", str(path))
    capsys.readouterr()
    imported = {v.metadata.get("purposes") for v in DatasetVersion.objects.all()} - {"", None}
    assert imported == expected
