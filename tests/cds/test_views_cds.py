"""Clinician pages (live form, stored evaluation, opinion) and the staff pathway pages."""

from __future__ import annotations

import datetime as dt
import re
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from django.urls import reverse
from django.utils import timezone

from accounts import extensions
from accounts.models import AuditEvent, Role
from cds import engine, services
from cds.models import Evaluation, PathwayVersion
from tests.factories import make_member

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def pathways(db):
    services.pathway_sync()


@pytest.fixture
def clinician(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


def evaluate(client, slug="prostate-eau", **data):
    """The live preview, as htmx sends it on every change."""
    return client.post(reverse("cds:evaluate", args=[slug]), data, **HTMX)


def save(client, slug="prostate-eau", **data):
    """The clinician's "Save evaluation"."""
    return client.post(reverse("cds:evaluation_save", args=[slug]), data)


def test_home_lists_the_active_pathways(client_as, clinician, django_assert_max_num_queries):
    client = client_as(clinician)
    save(client, psa="5", isup_grade="1", ct="cT1c")
    with django_assert_max_num_queries(8):
        response = client.get(reverse("cds:home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("cds:pathway", args=["prostate-eau"]) in html
    assert reverse("cds:pathway", args=["nsclc-esmo"]) in html
    assert "Low risk" in html  # the recent evaluation
    assert reverse("cds:manage") not in html  # not staff


def test_home_needs_a_login(client):
    response = client.get(reverse("cds:home"))
    assert response.status_code == 302


def test_the_pathway_form_is_generated_from_the_input_schema(client_as, clinician):
    response = client_as(clinician).get(reverse("cds:pathway", args=["prostate-eau"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-trigger="change, submit"' in html
    assert f'hx-post="{reverse("cds:evaluate", args=["prostate-eau"])}"' in html
    assert 'name="psa"' in html and "PSA at diagnosis (ng/mL)" in html
    assert '<option value="cT2b">' in html
    assert "Range 0–10000 ng/mL." in html
    assert "<script>" not in html and "style=" not in html


def test_a_change_re_evaluates_into_a_partial_and_stores_nothing(client_as, clinician):
    client = client_as(clinician)
    events_before = AuditEvent.objects.count()
    for psa in ("1", "12"):  # the live form sends every intermediate state
        response = evaluate(client, psa=psa, isup_grade="1", ct="cT2a", cn="cN0", cm="cM0")
        assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment for htmx
    assert "Result: Intermediate risk" in html
    assert "Why: every rule the pathway considered" in html
    assert not Evaluation.objects.exists()
    assert AuditEvent.objects.count() == events_before
    # The preview offers to save exactly the values it shows.
    assert f'action="{reverse("cds:evaluation_save", args=["prostate-eau"])}"' in html
    assert '<input type="hidden" name="psa" value="12">' in html
    assert "Save evaluation" in html


def test_save_evaluation_stores_one_evaluation_and_one_audit_event(client_as, clinician):
    client = client_as(clinician)
    response = save(client, psa="12", isup_grade="1", ct="cT2a", cn="cN0", cm="cM0")
    evaluation = Evaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == evaluation.get_absolute_url()
    assert evaluation.source == "ui" and evaluation.user == clinician
    assert evaluation.inputs == {
        "psa": "12",
        "isup_grade": "1",
        "ct": "cT2a",
        "cn": "cN0",
        "cm": "cM0",
    }
    assert AuditEvent.objects.filter(action="cds.evaluated").count() == 1
    assert AuditEvent.objects.get(action="cds.evaluated").object_id == str(evaluation.pk)
    page = client.get(response["Location"]).content.decode()
    assert "Evaluation saved." in page
    assert reverse("cds:evaluation_tumour_board_pdf", args=[evaluation.pk]) in page


def test_saving_invalid_values_keeps_the_form_with_field_messages(client_as, clinician):
    client = client_as(clinician)
    response = save(client, psa="20000", ct="cT1c")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="error" id="id_psa_error"' in html and 'value="20000"' in html
    assert not Evaluation.objects.exists()


def test_invalid_values_answer_400_with_field_messages(client_as, clinician):
    client = client_as(clinician)
    response = evaluate(client, psa="20000", ct="cT1c")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please check these inputs" in html and "Must be between 0 and 10000 ng/mL." in html
    assert not Evaluation.objects.exists()
    # Without htmx the whole page comes back, the message next to the field.
    response = client.post(reverse("cds:evaluate", args=["prostate-eau"]), {"psa": "-1"})
    assert response.status_code == 400
    assert 'class="error" id="id_psa_error"' in response.content.decode()


def test_a_stored_evaluation_is_visible_only_to_its_author_and_admins(
    client_as, clinician, outsider, platform_admin, client
):
    save(client_as(clinician), psa="4", isup_grade="1", ct="cT1c")
    url = Evaluation.objects.get().get_absolute_url()
    assert client.get(url).status_code == 200
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(platform_admin)
    assert client.get(url).status_code == 200


def test_an_old_evaluation_is_re_shown_exactly_after_the_pathway_changed(
    client_as, clinician, tmp_path: Path
):
    client = client_as(clinician)
    save(client, psa="12", isup_grade="1", ct="cT1c", cn="cN0", cm="cM0")
    old = Evaluation.objects.get()
    before = client.get(old.get_absolute_url()).content.decode()
    old_output = dict(old.output)

    data = yaml.safe_load((engine.PATHWAYS_DIR / "prostate-eau.yaml").read_text())
    data["version"] = "2.0.0"
    data["outcomes"]["intermediate"]["label"] = "Intermediate (new edition)"
    for rule in data["rules"]:
        if rule["id"] == "intermediate":
            rule["description"] = "Changed rule text."
    (tmp_path / "prostate-eau.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    services.pathway_sync(directory=tmp_path)
    assert (
        PathwayVersion.objects.get(pathway__slug="prostate-eau", status="active").version == "2.0.0"
    )

    old.refresh_from_db()
    assert old.output == old_output
    after = client.get(old.get_absolute_url()).content.decode()
    assert "Result: Intermediate risk" in after and "Intermediate (new edition)" not in after
    assert "Changed rule text." not in after
    assert "version 1.1.0" in after and "now at" in after
    # Everything but the "pathway changed" notice is identical.
    assert _body(before) == _body(after)
    # A new evaluation uses the new edition.
    response = evaluate(client, psa="12", isup_grade="1", ct="cT1c", cn="cN0", cm="cM0")
    assert "Intermediate (new edition)" in response.content.decode()


def _body(html: str) -> str:
    """The page from the inputs on, without the per-request CSRF token."""
    return re.sub(r'value="[^"]+"', "", html.split("<h2>Inputs</h2>")[1].split("<footer")[0])


def test_agreeing_is_recorded_and_audited(client_as, clinician):
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    url = reverse("cds:evaluation_opinion", args=[evaluation.pk])
    response = client.post(url, {"opinion": "agree"}, follow=True)
    assert "your agreement was recorded" in response.content.decode()
    evaluation.refresh_from_db()
    assert evaluation.opinion == "agree"
    assert AuditEvent.objects.filter(action="cds.evaluation_agreed").exists()


def test_disagreeing_needs_a_reason(client_as, clinician):
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    response = client.post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]), {"opinion": "disagree"}
    )
    assert response.status_code == 400
    assert "Please say why you disagree." in response.content.decode()


def test_a_disagreement_without_the_feedback_module_is_kept_on_the_evaluation(
    client_as, clinician, monkeypatch
):
    monkeypatch.delitem(extensions.PROVIDERS, extensions.CDS_DISAGREEMENT, raising=False)
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    response = client.post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]),
        {"opinion": "disagree", "reason": "MRI suggests cT3a."},
        follow=True,
    )
    assert "no feedback item was created" in response.content.decode()
    evaluation.refresh_from_db()
    assert evaluation.opinion == "disagree" and evaluation.opinion_reason == "MRI suggests cT3a."
    assert AuditEvent.objects.filter(action="cds.evaluation_disagreed").exists()


def test_a_disagreement_becomes_a_feedback_item_when_the_module_exists(
    client_as, clinician, monkeypatch
):
    calls = []

    def cds_disagreement_record(*, user, evaluation, reason):
        calls.append((user, evaluation.pk, reason))
        return types.SimpleNamespace(pk=42)

    monkeypatch.setitem(extensions.PROVIDERS, extensions.CDS_DISAGREEMENT, cds_disagreement_record)
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    client.post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]),
        {"opinion": "disagree", "reason": "Outdated threshold."},
    )
    assert calls == [(clinician, evaluation.pk, "Outdated threshold.")]
    evaluation.refresh_from_db()
    assert evaluation.feedback_ref == "42"


def test_others_cannot_give_an_opinion(client_as, clinician, outsider, client):
    save(client_as(clinician), psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    client.force_login(outsider)
    response = client.post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]), {"opinion": "agree"}
    )
    assert response.status_code == 404


# --- staff pages -------------------------------------------------------------------------------


def _second_eau_version(tmp_path: Path, **changes) -> PathwayVersion:
    data = yaml.safe_load((engine.PATHWAYS_DIR / "prostate-eau.yaml").read_text())
    data.update(changes)
    data["outcomes"]["low"]["label"] = "Low risk (revised)"
    (tmp_path / "prostate-eau.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    services.pathway_sync(directory=tmp_path)
    return PathwayVersion.objects.get(pathway__slug="prostate-eau", version=data["version"])


def test_pathway_admin_pages_are_for_staff_only(client_as, clinician, client):
    client.force_login(clinician)
    assert client.get(reverse("cds:manage")).status_code == 404
    version = PathwayVersion.objects.first()
    assert client.post(reverse("cds:manage_retire", args=[version.pk])).status_code == 404
    version.refresh_from_db()
    assert version.status == "active"


def test_staff_list_versions_and_diff_two_of_them(
    client_as, platform_admin, tmp_path, django_assert_max_num_queries
):
    new = _second_eau_version(tmp_path, version="1.2.0")
    old = PathwayVersion.objects.get(pathway__slug="prostate-eau", version="1.1.0")
    client = client_as(platform_admin)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("cds:manage"))
    html = response.content.decode()
    assert response.status_code == 200 and "1.1.0" in html and "Retired" in html
    response = client.get(
        reverse("cds:manage_diff", args=["prostate-eau"]), {"from": old.pk, "to": new.pk}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "outcomes.low.label" in html and "Low risk (revised)" in html
    assert "<code>version</code>" in html
    assert 'class="cds-diff-add"' in html and 'class="cds-diff-del"' in html


def test_staff_activate_and_retire_versions_audited(client_as, platform_admin, tmp_path):
    new = _second_eau_version(tmp_path, version="1.2.0")
    old = PathwayVersion.objects.get(pathway__slug="prostate-eau", version="1.1.0")
    client = client_as(platform_admin)
    client.post(reverse("cds:manage_activate", args=[old.pk]))
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == "active" and new.status == "retired"
    client.post(reverse("cds:manage_retire", args=[old.pk]))
    old.refresh_from_db()
    assert old.status == "retired"
    assert AuditEvent.objects.filter(
        action="cds.pathway_version_activated", actor=platform_admin
    ).exists()
    assert AuditEvent.objects.filter(
        action="cds.pathway_version_retired", actor=platform_admin
    ).exists()
    # No active eau version now: the clinician page is gone, old evaluations are not.
    assert client.get(reverse("cds:pathway", args=["prostate-eau"])).status_code == 404


def test_staff_cannot_activate_a_version_whose_tests_fail(client_as, platform_admin, tmp_path):
    data = yaml.safe_load((engine.PATHWAYS_DIR / "prostate-eau.yaml").read_text())
    data["version"] = "1.3.0"
    data["tests"][0]["expect"] = (
        "metastatic" if data["tests"][0].get("expect") != "metastatic" else "low"
    )
    (tmp_path / "prostate-eau.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    services.pathway_sync(directory=tmp_path)
    bad = PathwayVersion.objects.get(version="1.3.0")
    response = client_as(platform_admin).post(
        reverse("cds:manage_activate", args=[bad.pk]), follow=True
    )
    assert "cannot be activated" in response.content.decode()
    bad.refresh_from_db()
    assert bad.status == "draft"


def test_the_dashboard_shows_recent_evaluations(client_as, clinician):
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    html = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Decision support: your recent evaluations" in html
    assert Evaluation.objects.get().get_absolute_url() in html


def test_each_list_of_your_evaluations_shows_the_viewers_own(client_as, clinician, platform_admin):
    save(client_as(clinician), psa="4", isup_grade="1", ct="cT1c")
    theirs = Evaluation.objects.get()
    client = client_as(platform_admin)
    for name in ("accounts:dashboard", "cds:home"):
        html = client.get(reverse(name)).content.decode()
        assert theirs.get_absolute_url() not in html, name
    # The admin may still open it (platform admins see every evaluation).
    assert client.get(theirs.get_absolute_url()).status_code == 200
    save(client, psa="4", isup_grade="1", ct="cT1c")
    mine = Evaluation.objects.get(user=platform_admin)
    for name in ("accounts:dashboard", "cds:home"):
        html = client.get(reverse(name)).content.decode()
        assert mine.get_absolute_url() in html and theirs.get_absolute_url() not in html, name


def test_every_page_shows_times_in_the_portal_time_zone(client_as, clinician, settings):
    settings.TIME_ZONE = "Europe/Stockholm"
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    local = timezone.localtime(evaluation.created_at, ZoneInfo("Europe/Stockholm"))
    utc = evaluation.created_at.astimezone(dt.UTC)
    assert local.strftime("%H:%M") != utc.strftime("%H:%M")
    shown = local.strftime("%Y-%m-%d %H:%M")
    for url in (
        reverse("accounts:dashboard"),
        reverse("cds:home"),
        evaluation.get_absolute_url(),
    ):
        html = client.get(url).content.decode()
        assert shown in html, url
        assert utc.strftime("%Y-%m-%d %H:%M") not in html, url
        assert "times in Europe/Stockholm" in html, url


def test_every_pathways_own_test_cases_give_the_same_result_through_the_form(client_as, clinician):
    """The generated form passes values as text; the engine must read them as the file's tests do."""
    client = client_as(clinician)
    checked = 0
    for version in PathwayVersion.objects.filter(status="active").select_related("pathway"):
        slug = version.pathway.slug
        page = client.get(reverse("cds:pathway", args=[slug]))
        assert page.status_code == 200
        for case in version.document["tests"]:
            if case.get("expect") is None:
                continue
            # The form offers canonical values (no aliases such as "2+"); use the engine's own.
            clean, errors = engine.validate_inputs(version.engine_pathway(), case["inputs"])
            assert not errors
            data = {k: str(v) for k, v in clean.items()}
            response = evaluate(client, slug, **data)
            assert response.status_code == 200, (slug, case["id"], response.content[:500])
            label = version.document["outcomes"][case["expect"]]["label"]
            assert f"Result: {label}" in response.content.decode(), (slug, case["id"])
            checked += 1
    assert checked > 40


def test_a_disagreement_reaches_the_real_feedback_module(client_as, clinician):
    # feedback provides the recorder at app ready (accounts.extensions), no import between them.
    assert extensions.provided(extensions.CDS_DISAGREEMENT) is not None
    client = client_as(clinician)  # hospital A is an implementation test site
    save(client, psa="4", isup_grade="1", ct="cT1c")
    evaluation = Evaluation.objects.get()
    response = client.post(
        reverse("cds:evaluation_opinion", args=[evaluation.pk]),
        {"opinion": "disagree", "reason": "Threshold looks outdated."},
        follow=True,
    )
    assert response.status_code == 200
    evaluation.refresh_from_db()
    assert evaluation.opinion == "disagree" and evaluation.feedback_ref
    assert "sent as feedback" in response.content.decode()


def test_the_evaluation_page_has_a_constant_query_count(
    client_as, clinician, django_assert_max_num_queries
):
    client = client_as(clinician)
    save(client, psa="4", isup_grade="1", ct="cT1c")
    url = Evaluation.objects.get().get_absolute_url()
    with django_assert_max_num_queries(8):
        assert client.get(url).status_code == 200
