"""manage.py import_dcat: round trip through review, idempotence, atomicity, clear errors."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rdflib.compare import graph_diff, isomorphic, to_isomorphic

from accounts import demo as accounts_demo
from accounts.models import Membership, MembershipRole, Organisation, Role
from catalogue import demo, export, rdf, services
from catalogue.models import Dataset, DatasetVersion, Distribution, Status, TermsOfUse
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def empty_catalogue() -> None:
    Dataset.objects.update(current_version=None)
    DatasetVersion.objects.all().delete()
    TermsOfUse.objects.all().delete()
    Distribution.objects.all().delete()
    Dataset.objects.all().delete()


def user_with(role: str, organisations, username: str):
    user = UserFactory(username=username)
    for organisation in organisations:
        membership = Membership.objects.create(user=user, organisation=organisation)
        MembershipRole.objects.create(membership=membership, name=role)
    return user


@pytest.fixture
def exported(tmp_path):
    accounts_demo.seed()
    demo.seed()
    graph = export.full_graph()
    path = tmp_path / "catalogue.ttl"
    path.write_text(graph.serialize(format="turtle"), encoding="utf-8")
    return graph, path


@pytest.fixture
def steward(exported):
    """A data steward of every organisation (the demo catalogue has many publishers)."""
    return user_with(Role.DATA_STEWARD, Organisation.objects.all(), "importer")


@pytest.fixture
def reviewer(exported):
    platform = Organisation.objects.get(slug="optima")  # the demo's platform operator
    return user_with(Role.CURATOR, [platform], "import-curator")


def import_as(user, path) -> None:
    call_command("import_dcat", str(path), "--as", user.get_username())


def review_all(steward, reviewer) -> None:
    """The normal lifecycle: the steward submits each draft, a curator publishes it."""
    for dataset in Dataset.objects.filter(status=Status.DRAFT).order_by("pk"):
        services.dataset_submit(user=steward, dataset=dataset)
        services.dataset_publish(user=reviewer, dataset=dataset)


def without_publication_facts(graph):
    """Issued date and version number belong to this portal's publication, not to the source."""
    graph = to_isomorphic(graph)
    for predicate in (rdf.DCAT.version, rdf.DCTERMS.issued):
        graph.remove((None, predicate, None))
    return graph


def test_export_import_review_export_is_isomorphic(exported, steward, reviewer, capsys):
    before, path = exported
    empty_catalogue()
    import_as(steward, path)
    assert "12 created, 0 updated, 0 skipped" in capsys.readouterr().out
    # Imported datasets are drafts: nothing is published before review.
    assert Dataset.objects.filter(status=Status.DRAFT).count() == 12
    assert not DatasetVersion.objects.exists()
    review_all(steward, reviewer)
    after = export.full_graph()
    before, after = without_publication_facts(before), without_publication_facts(after)
    if not isomorphic(before, after):
        _, only_before, only_after = graph_diff(before, after)
        pytest.fail(
            "not isomorphic\nonly before:\n"
            + only_before.serialize(format="nt")[:2000]
            + "\nonly after:\n"
            + only_after.serialize(format="nt")[:2000]
        )
    assert Dataset.objects.filter(status=Status.PUBLISHED).count() == 12


def test_importing_twice_changes_nothing(exported, steward, capsys):
    _, path = exported
    empty_catalogue()
    import_as(steward, path)
    capsys.readouterr()
    import_as(steward, path)
    assert "0 created, 0 updated, 12 skipped" in capsys.readouterr().out
    assert Dataset.objects.filter(status=Status.DRAFT).count() == 12


def test_a_changed_source_makes_a_new_draft_and_leaves_the_published_version(
    exported, steward, reviewer, capsys
):
    _, path = exported
    empty_catalogue()
    import_as(steward, path)
    review_all(steward, reviewer)
    text = path.read_text().replace("Small cell lung cancer cohort", "SCLC cohort (renamed)")
    path.write_text(text)
    capsys.readouterr()
    import_as(steward, path)
    assert "0 created, 1 updated, 11 skipped" in capsys.readouterr().out
    dataset = Dataset.objects.get(identifier="optima-nl-sclc-cohort")
    assert dataset.status == Status.DRAFT and dataset.title == "SCLC cohort (renamed)"
    assert dataset.current_version.title == "Small cell lung cancer cohort"
    assert dataset.current_version.number == 1
    review_all(steward, reviewer)
    dataset.refresh_from_db()
    assert dataset.current_version.title == "SCLC cohort (renamed)"
    assert dataset.current_version.number == 2


def test_the_acting_user_is_required_and_must_exist(exported):
    _, path = exported
    with pytest.raises(CommandError, match="--as"):
        call_command("import_dcat", str(path))
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        call_command("import_dcat", str(path), "--as", "nobody")


def test_malformed_rdf_is_rejected_with_a_clear_message_and_nothing_imported(
    exported, steward, tmp_path
):
    _, path = exported
    empty_catalogue()
    broken = tmp_path / "broken.ttl"
    broken.write_text(path.read_text()[:-200] + " <unclosed")
    with pytest.raises(CommandError, match=r"not valid turtle RDF.*Nothing was imported"):
        import_as(steward, broken)
    assert Dataset.objects.count() == 0


def test_an_error_half_way_imports_nothing(exported, steward, monkeypatch):
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
        import_as(steward, path)
    assert Dataset.objects.count() == 0


def test_missing_file(db):
    user = UserFactory(username="someone")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_dcat", "/nonexistent/catalogue.ttl", "--as", user.get_username())


def test_purposes_travel_as_healthdcat_ap_dpv_purpose_and_the_old_term_still_imports(
    exported, steward, capsys
):
    from rdflib import Literal
    from rdflib.namespace import DCTERMS, RDF

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
    import_as(steward, path)
    capsys.readouterr()
    imported = set(Dataset.objects.values_list("purposes", flat=True)) - {"", None}
    assert imported == expected
