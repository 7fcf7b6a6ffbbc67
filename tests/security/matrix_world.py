"""The world the permission matrix runs in: the demo seed plus the few objects it lacks.

The eight roles are demo users: an anonymous visitor, ``researcher`` (EICOR), ``steward.de``
(hospital A), ``steward.fr`` (hospital B), ``dac.de`` (hospital A's data access committee),
``siteadmin.de`` (hospital A's node), ``curator`` (platform) and ``admin`` (platform admin, staff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = (
    "anonymous",
    "researcher",
    "steward_a",
    "steward_b",
    "dac_a",
    "site_admin_a",
    "curator",
    "admin",
)
USERNAMES = {
    "researcher": "researcher",
    "steward_a": "steward.de",
    "steward_b": "steward.fr",
    "dac_a": "dac.de",
    "site_admin_a": "siteadmin.de",
    "curator": "curator",
    "admin": "admin",
}

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


@dataclass(frozen=True)
class Route:
    key: str  # namespaced URL name, "+fmt" for DRF format-suffix twins
    pattern: str
    name: str
    has_format: bool
    params: tuple[str, ...]


def _params(pattern: str) -> tuple[str, ...]:
    names = re.findall(r"\(\?P<(\w+)>", pattern) + re.findall(r"<(?:\w+:)?(\w+)>", pattern)
    return tuple(dict.fromkeys(names))


def all_routes() -> list[Route]:
    """Every URL pattern of the project, read from Django's resolver."""
    routes: list[Route] = []

    def walk(resolver, prefix: str, namespace: str | None) -> None:
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                ns = namespace
                if p.namespace:
                    ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
                walk(p, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                pattern = prefix + str(p.pattern)
                name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or "")
                has_format = "(?P<format>" in pattern
                key = (name or pattern) + ("+fmt" if has_format else "")
                routes.append(Route(key, pattern, name, has_format, _params(pattern)))

    walk(get_resolver(), "", None)
    return routes


@dataclass
class World:
    users: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)


def build_world(client_factory) -> World:
    """Seed the demo and add an analysis with runs, a CDS evaluation, a feedback attachment and an
    API token, so every URL has a real object to point at."""
    from django.db.models import Max

    from accounts.models import ApiToken, Notification, Organisation
    from catalogue.models import Dataset, DatasetVersion
    from cds.models import Evaluation, PathwayVersion
    from federation import services as fed
    from federation.models import Node, NodeDataset, Run
    from feedback.models import Attachment, FeedbackItem
    from governance.models import (
        AccessRequest,
        Agreement,
        AgreementTemplate,
        Entitlement,
    )
    from governance.models import (
        Attachment as GovAttachment,
    )

    call_command("seed_demo", "--quiet-logins", stdout=_Null())
    User = get_user_model()
    world = World(users={role: User.objects.get(username=u) for role, u in USERNAMES.items()})
    researcher = world.users["researcher"]

    de = Organisation.objects.get(slug="de-hospital")
    dataset = Dataset.objects.get(identifier="optima-de-nsclc-immunotherapy")
    analysis = fed.analysis_create(
        researcher=researcher,
        analysis_type="cohort_count",
        version=1,
        params={"cohort": {"condition_concept_ids": [4115276]}, "stratify_by": ["sex"]},
        datasets=[dataset],
        title="Matrix analysis",
    )
    run = Run.objects.filter(analysis=analysis).first()

    fl_job, trained_model = _learning(researcher, dataset, world.users["admin"])

    client = client_factory()
    client.force_login(researcher)
    response = client.post(
        "/cds/pathways/prostate-eau/save/", {"psa": "5", "isup_grade": "1", "ct": "cT1c"}
    )
    assert response.status_code in (200, 302), response.status_code
    evaluation = Evaluation.objects.filter(user=researcher).latest("created_at")

    item = FeedbackItem.objects.get(author__username="steward.de")
    attachment = Attachment.objects.create(
        item=item,
        file=SimpleUploadedFile("screen.png", PNG, content_type="image/png"),
        original_name="screen.png",
        content_type="image/png",
        size=len(PNG),
        sha256="0" * 64,
        uploaded_by=item.author,
    )
    token, _raw = ApiToken.issue(user=researcher, name="matrix")
    central_upload, central_version = _central_copy(dataset, world.users["steward_a"])

    access_request = AccessRequest.objects.filter(status="submitted").first()
    agreement = Agreement.objects.get(parties__organisation=de)
    entitlement = Entitlement.objects.filter(holder=researcher, dataset=dataset).first()
    version = DatasetVersion.objects.filter(dataset=dataset).aggregate(n=Max("number"))["n"]
    world.ids = {
        "dataset": dataset.identifier,
        "draft": "optima-de-lung-radiotherapy-draft",
        "version": version,
        "analysis": analysis.pk,
        "run": run.pk,
        "fl_job": fl_job.pk,
        "trained_model": trained_model.pk,
        "node": Node.objects.get(organisation=de).pk,
        "nodedataset": dataset.pk,
        "node_link": NodeDataset.objects.filter(node__organisation=de).first().pk,
        "evaluation": evaluation.pk,
        "pathway": "prostate-eau",
        "pathway_version": PathwayVersion.objects.filter(pathway__slug="prostate-eau").first().pk,
        "dataset_pk": dataset.pk,
        "feedback": item.pk,
        "feedback_attachment": attachment.pk,
        "token": token.pk,
        "request": access_request.pk,
        "custodian": de.pk,
        "agreement": agreement.pk,
        "template": AgreementTemplate.objects.first().pk,
        "entitlement": entitlement.pk,
        "gov_attachment": GovAttachment.objects.filter(request=access_request).first().pk
        if GovAttachment.objects.filter(request=access_request).exists()
        else GovAttachment.objects.first().pk,
        "notification": Notification.objects.filter(recipient__username="dac.de").first().pk,
        "org": "de-hospital",
        "member": world.users["steward_a"].pk,
        "invitation": "not-a-real-invitation-token",
        "central_upload": central_upload.pk,
        "central_version": central_version.pk,
    }
    return world


def _central_copy(dataset, steward):
    """A loaded central copy of ``dataset`` (the rows only: the matrix reads and retires it)."""
    import tempfile

    from django.utils import timezone

    from central.models import DatasetVersion, Upload, UploadStatus

    upload = Upload.objects.create(
        dataset=dataset,
        uploaded_by=steward,
        filename="extract.zip",
        size=4,
        sha256="0" * 64,
        received_bytes=4,
        status=UploadStatus.LOADED,
        report={"checks": [], "tables": {"person": 0}, "errors": 0, "warnings": 0, "passed": True},
    )
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        upload=upload,
        location=f"{tempfile.gettempdir()}/optima-matrix-no-such-central-copy.sqlite3",
        loaded_at=timezone.now(),
    )
    return upload, version


def _learning(researcher, dataset, admin):
    """A federated-learning job of the researcher's and the model released from it."""
    from catalogue.models import Dataset
    from federation.models import Analysis, FlJob, Node, TrainedModel

    analysis = Analysis.objects.create(
        researcher=researcher,
        title="Matrix FL",
        type="federated_learning",
        version=1,
        params={},
        min_nodes=1,
    )
    fl_job = FlJob.objects.create(analysis=analysis)
    fl_job.nodes.add(Node.objects.get(organisation__slug="de-hospital"))
    model = TrainedModel.objects.create(
        name="matrix-model",
        version=1,
        fl_job=fl_job,
        template="logistic_regression",
        features=[],
        parameters={},
        training_params={},
        model_card="# Matrix model",
        released_by=admin,
    )
    # Trained on a dataset nobody in the matrix holds an entitlement for: downloads are for
    # entitled researchers (federation's own tests) and platform admins only.
    model.datasets.add(Dataset.objects.get(identifier="optima-se-breast-adjuvant"))
    return fl_job, model


class _Null:
    def write(self, *_args, **_kwargs):
        return None

    def flush(self):
        return None
