"""A handful of realistic feedback items at the demo test sites (idempotent: keyed on site and title)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation

from . import services
from .models import Category, Component, FeedbackItem, Persona, Priority, Severity

User = get_user_model()

ITEMS = [
    {
        "key": "catalogue-back",
        "site": "de-hospital",
        "author": "clinician.de",
        "days_ago": 40,
        "persona": Persona.CLINICIAN,
        "category": Category.BUG,
        "component": Component.CATALOGUE,
        "severity": Severity.MEDIUM,
        "title": "Search filters are lost after going back from a dataset page",
        "description": "When I filter the catalogue by **disease = breast cancer** and open a "
        "dataset, the browser's *Back* button shows the unfiltered list again.",
        "steps_to_reproduce": "1. Open the catalogue\n2. Filter by disease\n3. Open a dataset\n"
        "4. Press Back",
        "page_path": "/catalogue/",
        "shared": True,
        "contact_consent": True,
        "flow": [("triage", {"priority": Priority.HIGH, "labels": ["ui", "regression"]})],
        "votes": ["clinician.fr", "steward.nl", "clinician.se"],
        "comments": [
            ("clinician.fr", "Same at our site, with Firefox and Edge."),
            ("admin", "Thanks, reproduced. We keep the filters in the URL in the next release."),
        ],
    },
    {
        "key": "cds-prostate",
        "site": "fr-hospital",
        "author": "clinician.fr",
        "days_ago": 25,
        "cds": {
            "evaluation_id": None,
            "pathway_id": "prostate-eau",
            "pathway_version": "1.0.0",
            "inputs": {
                "psa": 9.4,
                "isup_grade_group": 2,
                "ct_category": "cT2b",
                "cn_category": "cN0",
            },
            "output": {"classification": "intermediate", "label": "Intermediate risk"},
            "classification": "intermediate",
            "label": "Intermediate risk",
            "rule_ids": [
                "metastatic",
                "locally_advanced_t",
                "locally_advanced_n",
                "high_localised",
                "intermediate",
            ],
            "rule_id": "intermediate",
        },
        "description": "cT2b with PSA 9.4 and ISUP 2: our tumour board classifies this as "
        "intermediate *unfavourable*; the advice does not distinguish favourable from "
        "unfavourable, which changes whether active surveillance is offered.",
        "flow": [
            ("triage", {"priority": Priority.NORMAL, "labels": ["clinical-content"]}),
            ("start", {}),
        ],
    },
    {
        "key": "omop-ecog",
        "site": "nl-hospital",
        "author": "steward.nl",
        "days_ago": 18,
        "persona": Persona.DATA_STEWARD,
        "category": Category.DATA_ISSUE,
        "component": Component.CATALOGUE,
        "title": "ECOG performance status is not listed among the dataset's variables",
        "description": "Our OMOP extract maps ECOG to `measurement_concept_id` 4156639 but the "
        "dataset description shows no performance-status variable.",
        "page_path": "/catalogue/",
        "flow": [("triage", {"priority": Priority.NORMAL, "labels": ["omop"]})],
    },
    {
        "key": "node-proxy",
        "site": "se-hospital",
        "author": "siteadmin.se",
        "days_ago": 30,
        "persona": Persona.IT,
        "category": Category.BUG,
        "component": Component.NODE_AGENT,
        "component_version": "0.1.0",
        "severity": Severity.HIGH,
        "title": "Node agent cannot reach the portal through our outbound proxy",
        "description": "The agent ignores `HTTPS_PROXY`; heartbeats time out after 30 s.",
        "contact_consent": True,
        "flow": [
            ("triage", {"priority": Priority.URGENT, "labels": ["network"]}),
            ("start", {}),
            (
                "resolve",
                {
                    "resolution_note": "The agent now honours `HTTPS_PROXY` and `NO_PROXY`.",
                    "fixed_in_version": "0.1.1",
                },
            ),
        ],
        "comments": [("siteadmin.se", "Confirmed fixed with 0.1.1, thank you.")],
    },
    {
        "key": "dac-quorum-doc",
        "site": "de-hospital",
        "author": "steward.de",
        "days_ago": 6,
        "persona": Persona.DATA_STEWARD,
        "category": Category.DOCUMENTATION,
        "component": Component.GOVERNANCE,
        "title": "Explain how the DAC quorum is counted",
        "description": "The help page does not say whether abstentions count towards the quorum.",
        "page_path": "/governance/",
    },
    {
        "key": "km-svg",
        "site": "nl-hospital",
        "author": "clinician.nl",
        "days_ago": 10,
        "persona": Persona.DATA_SCIENTIST,
        "category": Category.FEATURE,
        "component": Component.FEDERATION,
        "title": "Download Kaplan–Meier plots as SVG for publications",
        "description": "PNG is too low-resolution for journals; SVG or PDF would help.",
        "shared": True,
        "votes": ["clinician.de", "steward.fr"],
    },
]


def _users(names):
    return {u.username: u for u in User.objects.filter(username__in=names)}


@transaction.atomic
def seed(stdout=None) -> dict:
    names = {"admin"}
    for spec in ITEMS:
        names.add(spec["author"])
        names.update(spec.get("votes", []))
        names.update(author for author, _ in spec.get("comments", []))
    users = _users(names)
    sites = {o.slug: o for o in Organisation.objects.filter(is_test_site=True)}
    admin = users.get("admin")
    created = 0
    for spec in ITEMS:
        author, site = users.get(spec["author"]), sites.get(spec["site"])
        if author is None or site is None or admin is None:
            continue
        cds = spec.get("cds")
        title = spec.get("title") or (
            f"Disagreement with {cds['pathway_id']} {cds['pathway_version']}: {cds['label']}"
        )
        if FeedbackItem.objects.filter(site=site, title=title).exists():
            continue
        item = services.feedback_submit(
            user=author,
            site=site,
            persona=spec.get("persona", Persona.CLINICIAN),
            category=spec.get("category", Category.CDS_DISAGREEMENT),
            component=spec.get("component", Component.CDS),
            component_version=spec.get("component_version", ""),
            severity=spec.get("severity", ""),
            title=title,
            description=spec["description"],
            steps_to_reproduce=spec.get("steps_to_reproduce", ""),
            page_path=spec.get("page_path", "/cds/" if cds else ""),
            contact_consent=spec.get("contact_consent", False),
            shared=spec.get("shared", False),
            cds_snapshot=cds,
        )
        for name, data in spec.get("flow", []):
            if name == "triage":
                data = {"assignee": admin, **data}
            services.feedback_transition(user=admin, item=item, name=name, **data)
        for voter in spec.get("votes", []):
            if voter in users:
                services.vote_add(user=users[voter], item=item)
        for commenter, body in spec.get("comments", []):
            if commenter in users:
                services.comment_add(user=users[commenter], item=item, body=body)
        # Spread the demo over the past weeks so the dashboard's charts have a shape.
        created_at = timezone.now() - timedelta(days=spec["days_ago"])
        item.refresh_from_db()
        FeedbackItem.objects.filter(pk=item.pk).update(
            created_at=created_at,
            triaged_at=created_at + timedelta(hours=20) if item.triaged_at else None,
            closed_at=created_at + timedelta(days=9) if item.closed_at else None,
        )
        created += 1
    if stdout:
        stdout.write(f"Feedback: {created} demo items added.")
    return {"created": created}
