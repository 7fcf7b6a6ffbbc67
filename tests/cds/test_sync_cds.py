"""manage.py cds_sync: versions by checksum, activation, refusal of pathways whose own tests fail."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from cds import engine, services
from cds.models import Pathway, PathwayVersion

pytestmark = pytest.mark.django_db

EAU = engine.PATHWAYS_DIR / "prostate-eau.yaml"


def write_pathway(directory: Path, change=None, name: str = "prostate-eau") -> Path:
    data = yaml.safe_load((engine.PATHWAYS_DIR / f"{name}.yaml").read_text())
    if change:
        change(data)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def sync(directory=None) -> str:
    out = io.StringIO()
    call_command("cds_sync", *(["--directory", str(directory)] if directory else []), stdout=out)
    return out.getvalue()


def test_it_loads_and_activates_every_shipped_pathway():
    output = sync()
    active = PathwayVersion.objects.filter(status="active").select_related("pathway")
    assert sorted(v.pathway.slug for v in active) == [
        "breast-st-gallen",
        "nsclc-esmo",
        "prostate-eau",
        "prostate-nccn",
    ]
    eau = active.get(pathway__slug="prostate-eau")
    compiled = engine.load_pathway(EAU)
    assert eau.checksum == compiled.checksum
    assert eau.version == compiled.version
    assert eau.document == compiled.raw()
    assert eau.engine_pathway().checksum == eau.checksum
    assert Pathway.objects.get(slug="prostate-eau").disease == "prostate_cancer"
    assert "prostate-eau 1.1.0" in output and "activated" in output
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"cds.pathway_version_loaded", "cds.pathway_version_activated"} <= actions


def test_a_second_sync_of_unchanged_files_adds_nothing():
    sync()
    events = AuditEvent.objects.count()
    output = sync()
    assert PathwayVersion.objects.count() == 4
    assert AuditEvent.objects.count() == events
    assert "unchanged" in output


def test_a_changed_file_becomes_a_new_version_and_retires_the_old(tmp_path):
    write_pathway(tmp_path)
    sync(tmp_path)
    first = PathwayVersion.objects.get()

    def bump(data):
        data["version"] = "1.1.0"
        data["outcomes"]["intermediate"]["label"] = "Intermediate risk (revised)"

    write_pathway(tmp_path, bump)
    sync(tmp_path)
    first.refresh_from_db()
    second = PathwayVersion.objects.exclude(pk=first.pk).get()
    assert first.status == "retired" and first.retired_at is not None
    assert second.status == "active" and second.version == "1.1.0"
    assert second.checksum != first.checksum
    assert second.document["outcomes"]["intermediate"]["label"] == "Intermediate risk (revised)"
    assert first.document["outcomes"]["intermediate"]["label"] == "Intermediate risk"


def test_a_changed_file_without_a_version_bump_still_becomes_a_new_version(tmp_path):
    write_pathway(tmp_path)
    sync(tmp_path)

    def edit(data):
        data["description"] += " Edited."

    write_pathway(tmp_path, edit)
    output = sync(tmp_path)
    assert PathwayVersion.objects.count() == 2
    assert "bump the version" in output


def test_it_refuses_to_activate_a_pathway_whose_own_tests_fail(tmp_path):
    write_pathway(tmp_path)
    sync(tmp_path)
    good = PathwayVersion.objects.get()

    def break_a_test(data):
        data["version"] = "1.2.0"
        data["tests"][0]["expect"] = (
            "metastatic" if data["tests"][0].get("expect") != "metastatic" else "low"
        )

    write_pathway(tmp_path, break_a_test)
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("cds_sync", "--directory", str(tmp_path), stdout=out)
    assert "not activated: prostate-eau" in str(excinfo.value)
    assert "refused" in out.getvalue() and "test cases fail" in out.getvalue()
    bad = PathwayVersion.objects.get(version="1.2.0")
    good.refresh_from_db()
    assert bad.status == "draft" and bad.self_test_failures
    assert good.status == "active"  # the previous edition keeps serving
    assert AuditEvent.objects.filter(
        action="cds.pathway_version_refused", object_id=str(bad.pk)
    ).exists()
    with pytest.raises(ValidationError, match="cannot be activated"):
        services.pathway_version_activate(actor=None, version=bad)


def test_the_command_exits_non_zero_on_an_invalid_file(tmp_path):
    (tmp_path / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    with pytest.raises(CommandError):
        sync(tmp_path)


def test_the_demo_seed_activates_the_pathways():
    from cds import demo

    demo.seed(stdout=io.StringIO())
    assert PathwayVersion.objects.filter(status="active").count() == 4
