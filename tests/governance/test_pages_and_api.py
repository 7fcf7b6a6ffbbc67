"""Agreement pages and API, the public register and statistics, the dashboard sections."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from governance import services
from governance.default_templates import ensure_default_templates
from governance.models import Agreement, AgreementStatus, AgreementTemplate, Decision
from tests.governance.factories import active_agreement, complete_draft

pytestmark = pytest.mark.django_db


@pytest.fixture
def templates(platform_admin):
    ensure_default_templates(actor=platform_admin)


def _agreement_payload(template_id):
    return {
        "template": template_id,
        "title": "Access to A",
        "purposes": "Lung cancer outcomes",
        "effective_date": "2026-01-01",
        "expiry_date": "2029-01-01",
        "parties": [
            {"organisation": "hospital-a", "role": "controller"},
            {"organisation": "institute", "role": "data_user"},
        ],
    }


def test_the_agreement_api_from_draft_to_active(
    api_as, templates, org_admin_a, signatory_a, signatory_i, outsider
):
    template = AgreementTemplate.objects.get(kind="data_access_use")
    response = api_as(org_admin_a).post(
        "/api/agreements/", _agreement_payload(template.pk), format="json"
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    assert api_as(outsider).get(f"/api/agreements/{pk}/").status_code == 404
    response = api_as(org_admin_a).patch(
        f"/api/agreements/{pk}/", {"title": "Access to hospital A"}, format="json"
    )
    assert response.status_code == 200 and response.json()["title"] == "Access to hospital A"
    response = api_as(org_admin_a).post(f"/api/agreements/{pk}/send/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "out_for_signature" and len(body["document_sha256"]) == 64
    response = api_as(org_admin_a).patch(
        f"/api/agreements/{pk}/", {"title": "Late change"}, format="json"
    )
    assert (
        response.status_code == 400
        and "new version" in response.json()["error"]["fields"]["status"][0]
    )
    response = api_as(signatory_a).post(
        f"/api/agreements/{pk}/sign/",
        {"organisation": "hospital-a", "full_name": "wrong name", "confirm": True},
        format="json",
    )
    assert response.status_code == 400 and "full_name" in response.json()["error"]["fields"]
    response = api_as(signatory_a).post(
        f"/api/agreements/{pk}/sign/",
        {"organisation": "institute", "full_name": "Sina Signer", "confirm": True},
        format="json",
    )
    assert response.status_code == 403
    for user, org in ((signatory_a, "hospital-a"), (signatory_i, "institute")):
        response = api_as(user).post(
            f"/api/agreements/{pk}/sign/",
            {"organisation": org, "full_name": user.get_full_name(), "confirm": True},
            format="json",
        )
        assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "active" and len(body["signatures"]) == 2
    assert body["signatures"][0]["document_sha256"] == body["document_sha256"]
    response = api_as(org_admin_a).post(f"/api/agreements/{pk}/new-version/")
    assert response.status_code == 201 and response.json()["version"] == 2


def test_the_agreement_pages(
    client_as, templates, org_admin_a, signatory_a, signatory_i, hospital_a, institute, outsider
):
    client = client_as(org_admin_a)
    template = AgreementTemplate.objects.get(kind="data_access_use")
    assert (
        client.get(
            f"/governance/agreements/new/?kind=data_access_use&organisation={hospital_a.pk}&partner={institute.pk}"
        ).status_code
        == 200
    )
    form = {
        "template": template.pk,
        "title": "Page agreement",
        "purposes": "Research",
        "effective_date": "2026-01-01",
        "expiry_date": "2028-01-01",
        "party_1_organisation": hospital_a.pk,
        "party_1_role": "controller",
        "party_2_organisation": institute.pk,
        "party_2_role": "data_user",
    }
    response = client.post("/governance/agreements/new/", {**form, "expiry_date": "2025-01-01"})
    assert response.status_code == 400 and b"must follow the effective date" in response.content
    response = client.post("/governance/agreements/new/", form)
    agreement = Agreement.objects.get()
    assert response["Location"] == f"/governance/agreements/{agreement.pk}/"
    assert client.post(f"/governance/agreements/{agreement.pk}/send/").status_code == 302
    pdf = client.get(f"/governance/agreements/{agreement.pk}/document.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert client_as(outsider).get(f"/governance/agreements/{agreement.pk}/").status_code == 404
    assert (
        client_as(outsider).get(f"/governance/agreements/{agreement.pk}/document.pdf").status_code
        == 404
    )
    sig_client = client_as(signatory_a)
    page = sig_client.get(f"/governance/agreements/{agreement.pk}/")
    assert b"Sign for Hospital A" in page.content
    party = agreement.parties.get(organisation=hospital_a)
    response = sig_client.post(
        f"/governance/agreements/{agreement.pk}/sign/",
        {"party": party.pk, "full_name": "Sina Signer", "confirm": "on"},
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 302
    assert agreement.signatures.get().ip_address == "198.51.100.7"
    response = client.get(f"/governance/agreements/{agreement.pk}/edit/")
    assert response.status_code == 400 and b"new version" in response.content


def test_templates_are_managed_by_platform_admins(
    client_as, platform_admin, org_admin_a, templates
):
    assert client_as(org_admin_a).get("/governance/templates/").status_code == 404
    client = client_as(platform_admin)
    assert client.get("/governance/templates/").status_code == 200
    response = client.post(
        "/governance/templates/new/",
        {"kind": "collaboration", "title": "Collab", "body": "# {{ title }}\n{{ unknown }}"},
    )
    assert response.status_code == 400 and b"Unknown placeholder" in response.content
    response = client.post(
        "/governance/templates/new/",
        {"kind": "collaboration", "title": "Collab", "body": "# {{ title }}"},
    )
    assert response.status_code == 302
    assert AgreementTemplate.objects.filter(kind="collaboration").count() == 2


@pytest.fixture
def decided(researcher, dac_a, dac_b, hospital_a, hospital_b, institute, dataset_a, dataset_b):
    active_agreement(hospital_a, institute)
    approved = complete_draft(
        researcher, [dataset_a, dataset_b], lay_summary="Plain words for everyone."
    )
    services.access_request_submit(actor=researcher, access_request=approved)
    services.decision_approve(
        actor=dac_a, decision=Decision.objects.get(request=approved, custodian=hospital_a)
    )
    services.decision_reject(
        actor=dac_b,
        decision=Decision.objects.get(request=approved, custodian=hospital_b),
        reason="No",
    )
    rejected = complete_draft(researcher, [dataset_a])
    rejected.project_title = "Rejected project"
    rejected.save()
    services.access_request_submit(actor=researcher, access_request=rejected)
    services.decision_reject(
        actor=dac_a, decision=Decision.objects.get(request=rejected), reason="No"
    )
    return approved, rejected


def test_the_public_register_lists_approved_projects(
    client, api, decided, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        page = client.get("/governance/register/")
    assert page.status_code == 200
    assert b"Survival after first-line therapy" in page.content
    assert b"Plain words for everyone." in page.content
    assert b"NSCLC cohort A" in page.content
    assert b"Breast cancer cohort B" not in page.content  # hospital B rejected its part
    assert b"Rejected project" not in page.content
    body = api.get("/api/data-use-register/").json()
    assert body["count"] == 1
    entry = body["results"][0]
    assert entry["organisation"] == "Research Institute"
    assert [d["title"] for d in entry["datasets"]] == ["NSCLC cohort A"]


def test_custodian_statistics(client, api, decided):
    rows = {r["custodian"]: r for r in api.get("/api/custodian-statistics/").json()}
    assert rows["hospital-a"]["requests"] == 2 and rows["hospital-a"]["approval_rate"] == 0.5
    assert rows["hospital-b"]["approval_rate"] == 0.0
    assert rows["hospital-a"]["median_days_to_decision"] is not None
    page = client.get("/governance/statistics/")
    assert page.status_code == 200 and b"50 %" in page.content


def test_median_days_against_a_hand_computed_value(
    researcher, dac_a, hospital_a, institute, dataset_a
):
    from governance.statistics import custodian_statistics

    active_agreement(hospital_a, institute)
    now = timezone.now()
    for days in (2, 4, 9):
        r = complete_draft(researcher, [dataset_a])
        services.access_request_submit(actor=researcher, access_request=r)
        d = Decision.objects.get(request=r)
        services.decision_reject(actor=dac_a, decision=d, reason="No")
        type(r).objects.filter(pk=r.pk).update(first_submitted_at=now - timedelta(days=days))
        Decision.objects.filter(pk=d.pk).update(decided_at=now)
    (row,) = custodian_statistics()
    assert row.median_days == 4.0 and row.approval_rate == 0.0


def test_dashboard_sections_by_role(
    client_as,
    decided,
    researcher,
    dac_a,
    signatory_a,
    templates,
    org_admin_a,
    hospital_a,
    institute,
    signatory_i,
):
    page = client_as(researcher).get("/dashboard/")
    assert b"My access requests" in page.content and b"My entitlements" in page.content
    agreement = services.agreement_create(
        actor=org_admin_a,
        template=AgreementTemplate.objects.get(kind="collaboration"),
        title="Sign me",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2027, 1, 1),
        parties=[(hospital_a, "data_contributor"), (institute, "data_user")],
    )
    services.agreement_send(actor=org_admin_a, agreement=agreement)
    page = client_as(signatory_a).get("/dashboard/")
    assert b"Documents to sign" in page.content and b"Sign me" in page.content
    r = complete_draft(researcher, [agreement.parties.first().organisation.datasets.first()])
    services.access_request_submit(actor=researcher, access_request=r)
    page = client_as(dac_a).get("/dashboard/")
    assert b"Decisions waiting" in page.content and r.reference.encode() in page.content
    assert Agreement.objects.get(title="Sign me").status == AgreementStatus.OUT_FOR_SIGNATURE


def test_governance_home_and_lists_need_login(client):
    for url in (
        "/governance/",
        "/governance/requests/",
        "/governance/agreements/",
        "/governance/entitlements/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_every_page_renders_for_the_demo_personas(client, django_user_model):
    from accounts import demo as accounts_demo
    from governance import demo
    from governance.models import AccessRequest
    from tests.governance.factories import published_dataset

    orgs = accounts_demo.seed()
    for code in ("de", "fr"):
        published_dataset(orgs[code], title=f"Lung {code}")
        published_dataset(orgs[code], title=f"Breast {code}")
    demo.seed()
    request_pk = AccessRequest.objects.get(project_title=demo.APPROVED_TITLE).pk
    agreement_pk = Agreement.objects.get(parties__organisation__slug="de-hospital").pk
    urls = [
        "/governance/",
        "/governance/basket/",
        "/governance/requests/",
        f"/governance/requests/{request_pk}/",
        "/governance/entitlements/",
        "/governance/agreements/",
        "/governance/agreements/new/",
        f"/governance/agreements/{agreement_pk}/",
        f"/governance/agreements/{agreement_pk}/signed.pdf",
        "/governance/register/",
        "/governance/statistics/",
    ]
    for username in ("researcher", "dac.de", "signatory.de", "orgadmin.de", "admin"):
        client.force_login(django_user_model.objects.get(username=username))
        for url in urls:
            response = client.get(url)
            allowed = {200}
            if (
                username in ("signatory.de", "orgadmin.de")
                and "/requests/" in url
                and url != "/governance/requests/"
            ):
                allowed = {404}
            assert response.status_code in allowed, (username, url, response.status_code)


def test_a_fresh_installation_gets_its_starting_templates(client_as, platform_admin):
    client = client_as(platform_admin)
    page = client.get("/governance/templates/")
    assert b"Create the starting versions" in page.content
    assert client.post("/governance/templates/defaults/").status_code == 302
    assert sorted(AgreementTemplate.objects.values_list("kind", "version")) == [
        ("collaboration", 1),
        ("data_access_use", 1),
        ("data_processing", 1),
        ("joint_controller", 1),
    ]
    client.post("/governance/templates/defaults/")
    assert AgreementTemplate.objects.count() == 4


def test_list_pages_have_constant_query_counts(
    client_as, researcher, dac_a, hospital_a, institute, dataset_a, django_assert_max_num_queries
):
    for n in range(4):
        active_agreement(hospital_a, institute)
        r = complete_draft(researcher, [dataset_a])
        services.access_request_submit(actor=researcher, access_request=r)
        services.decision_approve(actor=dac_a, decision=Decision.objects.get(request=r))
    for user, url in (
        (researcher, "/governance/entitlements/"),
        (dac_a, "/governance/entitlements/"),
        (dac_a, "/governance/agreements/"),
        (dac_a, "/governance/requests/"),
    ):
        client = client_as(user)
        with django_assert_max_num_queries(12):
            response = client.get(url)
        assert response.status_code == 200, url


def test_a_draft_is_limited_to_datasets_of_its_parties(
    client_as,
    templates,
    org_admin_a,
    signatory_a,
    signatory_i,
    hospital_a,
    hospital_b,
    institute,
    dataset_a,
    dataset_b,
):
    agreement = services.agreement_create(
        actor=org_admin_a,
        template=AgreementTemplate.objects.get(kind="data_access_use"),
        title="Limited",
        effective_date=date(2026, 1, 1),
        expiry_date=date(2027, 1, 1),
        parties=[(hospital_a, "controller"), (institute, "data_user")],
    )
    page = client_as(org_admin_a).get(f"/governance/agreements/{agreement.pk}/edit/")
    assert b"NSCLC cohort A" in page.content and b"Breast cancer cohort B" not in page.content
    form = {
        "template": agreement.template_id,
        "title": "Limited",
        "effective_date": "2026-01-01",
        "expiry_date": "2027-01-01",
        "party_1_organisation": hospital_a.pk,
        "party_1_role": "controller",
        "party_2_organisation": institute.pk,
        "party_2_role": "data_user",
        "datasets": [dataset_a.pk],
    }
    assert (
        client_as(org_admin_a)
        .post(f"/governance/agreements/{agreement.pk}/edit/", form)
        .status_code
        == 302
    )
    assert list(agreement.datasets.all()) == [dataset_a]
    sent = services.agreement_send(actor=org_admin_a, agreement=agreement)
    assert "- NSCLC cohort A" in sent.rendered_markdown
