"""Writes of federated learning: start, submit, follow, abort, release into the registry.

Same rules as the federated analyses (``federation.services.analyses``): entitlement for every dataset,
the sites' policies decide who takes part, every state change writes an audit event in the
transaction that makes it. Network calls to FLARE happen outside transactions; their outcome is
written afterwards, so a slow FLARE server never holds a database lock.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.audit import record, write_transaction
from accounts.jobs import enqueue
from accounts.models import Role
from accounts.permissions import has_role, is_platform_admin
from optima_node.flare.templates import template_for
from optima_node.schemas import FederatedLearningParams

from ..analysis_types import FEDERATED_LEARNING, FL_TYPE, FL_VERSION, KINDS
from ..models import (
    AnalysisStatus,
    FlJob,
    FlJobStatus,
    Node,
    TrainedModel,
)
from ..services.analyses import analysis_open, analysis_prepare
from . import FlareError, FlareUnavailable, states

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from catalogue.models import Dataset

    from .session import AdminKit

log = logging.getLogger(__name__)

FL_KIND = KINDS[(FL_TYPE, FL_VERSION)]


# --- settings -----------------------------------------------------------------------------------


def admin_kit() -> AdminKit:
    """The portal's FLARE admin credentials: ``FLARE_ADMIN_STARTUP_KIT`` (setting or environment),
    else the kit of the local POC system that ``make flare-poc`` started."""
    from .poc import ADMIN_USER, Poc
    from .session import AdminKit

    kit = getattr(settings, "FLARE_ADMIN_STARTUP_KIT", "") or os.environ.get(
        "FLARE_ADMIN_STARTUP_KIT", ""
    )
    if not kit:
        demo = Poc.load(work_dir() / "poc")
        if demo is None:
            raise FlareUnavailable(
                "FLARE_ADMIN_STARTUP_KIT is not set (point it at the portal's FLARE admin startup "
                "kit) and no local POC system runs (make flare-poc)."
            )
        return AdminKit(username=ADMIN_USER, startup_kit=str(demo.admin_kit))
    return AdminKit(
        username=getattr(settings, "FLARE_ADMIN_USER", "")
        or os.environ.get("FLARE_ADMIN_USER", "admin@optima.example"),
        startup_kit=str(kit),
    )


def work_dir() -> Path:
    default = Path(getattr(settings, "VAR_DIR", "var")) / "flare"
    return Path(getattr(settings, "FLARE_WORK_DIR", default))


def task_timeout() -> int:
    return int(getattr(settings, "FLARE_TASK_TIMEOUT_SECONDS", 3600))


# --- who takes part -----------------------------------------------------------------------------


def missing_fl_entitlements(user: AbstractBaseUser, datasets: Sequence[Dataset]) -> list[Dataset]:
    from governance.selectors import missing_entitlements

    return list(missing_entitlements(user=user, datasets=datasets, access_mode=FEDERATED_LEARNING))


def node_takes_part(node: Node, template: str) -> str:
    """Empty when the node's reported policy lets it train ``template``, else why not."""
    policy = node.policy or {}
    if not policy.get("federated_learning"):
        return "its site policy does not take part in federated learning"
    if template not in (policy.get("allowed_model_templates") or []):
        return f"its site policy does not allow the {template} template"
    return ""


# --- start --------------------------------------------------------------------------------------


def _transition(
    fl_job: FlJob,
    status: str,
    *,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    **payload: Any,
) -> None:
    previous = fl_job.status
    fl_job.status = status
    if reason:
        fl_job.reason = reason
    if (
        status
        in (
            FlJobStatus.AWAITING_RELEASE,
            FlJobStatus.FAILED,
            FlJobStatus.ABORTED,
        )
        and not fl_job.finished_at
    ):
        fl_job.finished_at = timezone.now()
    fl_job.save()
    analysis = fl_job.analysis
    analysis_status = {
        FlJobStatus.RELEASED: AnalysisStatus.COMPLETED,
        FlJobStatus.DECLINED: AnalysisStatus.FAILED,
        FlJobStatus.FAILED: AnalysisStatus.FAILED,
        FlJobStatus.ABORTED: AnalysisStatus.CANCELLED,
    }.get(status, AnalysisStatus.RUNNING)
    if analysis.status != analysis_status or (reason and analysis.reason != reason):
        analysis.status = analysis_status
        analysis.reason = reason or analysis.reason
        if analysis_status != AnalysisStatus.RUNNING:
            analysis.finished_at = timezone.now()
        analysis.save(update_fields=["status", "reason", "finished_at"])
    record(
        f"fl.{status}",
        actor=actor,
        obj=fl_job,
        payload={
            "analysis": analysis.pk,
            "from": previous,
            "flare_job_id": fl_job.flare_job_id,
            "reason": reason,
            **payload,
        },
    )


@write_transaction
def fl_create(
    *,
    researcher: AbstractBaseUser,
    datasets: Sequence[Dataset],
    params: Any,
    title: str = "",
    submit: bool = True,
) -> FlJob:
    """Start training: 403 without a federated-learning entitlement on every dataset; 400 for bad
    parameters, datasets no node serves, or fewer taking-part sites than ``min_sites``."""
    normalised, datasets, nodes = analysis_prepare(
        researcher=researcher, kind=FL_KIND, params=params, datasets=datasets
    )
    fl_params = FederatedLearningParams.model_validate(normalised)
    taking_part, left_out = [], []
    for node in nodes:
        why = node_takes_part(node, fl_params.template)
        (left_out if why else taking_part).append((node, why))
    if len(taking_part) < fl_params.min_sites:
        detail = "; ".join(f"{n.name}: {why}" for n, why in left_out) or "none left out"
        raise ValidationError(
            {
                "params": [
                    f"min_sites: {len(taking_part)} site(s) take part, the job needs "
                    f"{fl_params.min_sites} ({detail})."
                ]
            }
        )
    chosen = [n for n, _ in taking_part]
    analysis = analysis_open(
        researcher=researcher,
        kind=FL_KIND,
        params=normalised,
        min_nodes=fl_params.min_sites,
        title=title,
    )
    analysis.datasets.set(datasets)
    fl_job = FlJob.objects.create(analysis=analysis, sites=[n.name for n in chosen])
    fl_job.nodes.set(chosen)
    record(
        f"fl.{FlJobStatus.SUBMITTING}",
        actor=researcher,
        obj=fl_job,
        payload={
            "analysis": analysis.pk,
            "sites": fl_job.sites,
            "left_out": [{"node": n.name, "reason": why} for n, why in left_out],
        },
    )
    if submit:
        enqueue("federation.fl_submit", fl_job.pk)
    return fl_job


# --- FLARE: submit, poll, abort -----------------------------------------------------------------


def submit_token(fl_job: FlJob) -> str:
    return f"optima-fl-{fl_job.pk}-{int(fl_job.created_at.timestamp())}"


def fl_submit(*, fl_job_id: int) -> FlJob:
    """Build the job folder and submit it; idempotent (a submitted job is left alone)."""
    from . import session
    from .jobs import build_job, job_name

    fl_job = FlJob.objects.select_related("analysis").get(pk=fl_job_id)
    if fl_job.status != FlJobStatus.SUBMITTING or fl_job.flare_job_id:
        return fl_job
    started = time.perf_counter()
    out_dir = work_dir() / "jobs" / str(fl_job.pk)
    folder = out_dir / job_name(fl_job.analysis_id)
    try:
        # A retry (lost worker) resubmits the very same folder with the same token: FLARE answers
        # with the job it already accepted instead of starting a second one.
        if not (folder / "meta.json").exists():
            folder = build_job(
                name=job_name(fl_job.analysis_id),
                params=fl_job.analysis.params,
                sites=list(fl_job.sites),
                out_dir=out_dir,
                task_timeout=task_timeout(),
            )
        flare_job_id = session.submit(admin_kit(), folder, token=submit_token(fl_job))
    except (FlareUnavailable, FlareError, ValueError) as exc:
        with transaction.atomic():
            fl_job = FlJob.objects.select_for_update().select_related("analysis").get(pk=fl_job_id)
            if fl_job.status == FlJobStatus.SUBMITTING:
                _transition(fl_job, FlJobStatus.FAILED, reason=f"Submission failed: {exc}")
        return fl_job
    elapsed = time.perf_counter() - started
    with transaction.atomic():
        fl_job = FlJob.objects.select_for_update().select_related("analysis").get(pk=fl_job_id)
        fl_job.flare_job_id = flare_job_id
        fl_job.submitted_at = timezone.now()
        fl_job.timing = {**fl_job.timing, "submit": round(elapsed, 4)}
        _transition(fl_job, FlJobStatus.SUBMITTED)
    return fl_job


def _read_result(folder: Path) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    from .session import find_file

    model_file = find_file(folder, "server.npy")
    metrics_file = find_file(folder, "optima_metrics.json")
    weights = np.load(model_file, allow_pickle=False).ravel() if model_file else None
    report = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file else None
    return weights, report


def fl_poll(*, fl_job_id: int) -> FlJob:
    """One look at the FLARE job: status, progress, and the result when it finished."""
    from . import session

    fl_job = FlJob.objects.select_related("analysis").get(pk=fl_job_id)
    if not fl_job.is_open or not fl_job.flare_job_id:
        return fl_job
    started = time.perf_counter()
    kit = admin_kit()
    try:
        meta, report = session.poll(kit, fl_job.flare_job_id)
        flare_status = str(meta.get("status") or "")
        mapped = states.map_status(flare_status)
    except (FlareUnavailable, FlareError) as exc:
        log.warning("FL job %s: cannot poll FLARE: %s", fl_job.pk, exc)
        return fl_job
    weights = None
    download_seconds = 0.0
    if mapped in (states.FINISHED, states.FAILED, states.ABORTED):
        t0 = time.perf_counter()
        try:
            folder = session.download_result(
                kit, fl_job.flare_job_id, work_dir() / "results" / str(fl_job.pk)
            )
            weights, report = _read_result(folder)
        except FlareError as exc:
            log.warning("FL job %s: no result: %s", fl_job.pk, exc)
        download_seconds = time.perf_counter() - t0
    poll_seconds = time.perf_counter() - started - download_seconds
    with transaction.atomic():
        fl_job = FlJob.objects.select_for_update().select_related("analysis").get(pk=fl_job_id)
        if not fl_job.is_open:
            return fl_job
        fl_job.flare_status = flare_status
        fl_job.last_polled_at = timezone.now()
        timing = dict(fl_job.timing)
        timing["monitor"] = round(timing.get("monitor", 0.0) + poll_seconds, 4)
        timing["polls"] = int(timing.get("polls", 0)) + 1
        if download_seconds:
            timing["download"] = round(download_seconds, 4)
        fl_job.timing = timing
        if report is not None:
            fl_job.progress = report
        if mapped == states.RUNNING and fl_job.status != FlJobStatus.RUNNING:
            _transition(fl_job, FlJobStatus.RUNNING, flare_status=flare_status)
        elif (
            mapped == states.FINISHED
            and weights is not None
            and report
            and not report.get("failure")
        ):
            params = FederatedLearningParams.model_validate(fl_job.analysis.params)
            fl_job.global_model = {
                "template": params.template,
                "hidden_units": params.hidden_units,
                "features": params.features,
                "parameters": [float(x) for x in weights],
            }
            _transition(fl_job, FlJobStatus.AWAITING_RELEASE, flare_status=flare_status)
        elif mapped in (states.FINISHED, states.FAILED):
            reason = (report or {}).get("failure") or (
                f"FLARE ended the job as {flare_status}"
                + ("" if weights is not None else " without a global model")
            )
            _transition(fl_job, FlJobStatus.FAILED, reason=reason, flare_status=flare_status)
        elif mapped == states.ABORTED:
            _transition(fl_job, FlJobStatus.ABORTED, reason="Aborted in FLARE.")
        else:
            fl_job.save()
    return fl_job


def fl_abort(*, actor: AbstractBaseUser, fl_job: FlJob) -> FlJob:
    """The researcher (or a platform admin) stops training; FLARE is told first."""
    from . import session

    if not fl_job.is_open:
        raise ValidationError(f"The job is already {fl_job.get_status_display().lower()}.")
    if fl_job.flare_job_id:
        try:
            session.abort(admin_kit(), fl_job.flare_job_id)
        except (FlareUnavailable, FlareError) as exc:
            raise ValidationError(f"FLARE did not abort the job: {exc}") from exc
    with transaction.atomic():
        fl_job = FlJob.objects.select_for_update().select_related("analysis").get(pk=fl_job.pk)
        if fl_job.is_open:
            _transition(
                fl_job, FlJobStatus.ABORTED, actor=actor, reason="Aborted by the researcher."
            )
    return fl_job


# --- release gate and registry ------------------------------------------------------------------


def can_release(user: AbstractBaseUser, fl_job: FlJob) -> bool:
    """A site admin of a participating node's organisation, or a platform reviewer."""
    if is_platform_admin(user):
        return True
    return any(has_role(user, node.organisation, Role.SITE_ADMIN) for node in fl_job.nodes.all())


def _guard_release(actor: AbstractBaseUser, fl_job: FlJob) -> FlJob:
    if not can_release(actor, fl_job):
        raise PermissionDenied("Only a site admin of a participating site or a platform reviewer.")
    fl_job = FlJob.objects.select_for_update().select_related("analysis").get(pk=fl_job.pk)
    if fl_job.status != FlJobStatus.AWAITING_RELEASE:
        raise ValidationError(
            f"The job is {fl_job.get_status_display().lower()}, not awaiting release."
        )
    return fl_job


def model_card(
    fl_job: FlJob, name: str, version: int, sites: list[dict[str, Any]], metrics: dict[str, Any]
) -> str:
    """The registry entry's card (Markdown): model, outcome, inputs, cohort, training, sites."""
    params = fl_job.analysis.params
    template = params["template"]
    lines = [
        f"# {name} v{version}",
        "",
        f"- **Model**: {template.replace('_', ' ')}"
        + (
            f" (one tanh hidden layer of {params['hidden_units']} units)"
            if template == "mlp"
            else ""
        ),
        f"- **Outcome**: death within {params['outcome']['days']} days of the index date "
        "(persons censored earlier are left out).",
        f"- **Inputs**: {', '.join(fl_job.global_model['features'])}, standardised with fixed "
        "constants (optima_node.flare.features.SCALING).",
        f"- **Cohort**: condition concepts {params['cohort']['condition_concept_ids']}"
        + (" with descendants" if params["cohort"].get("include_descendants", True) else ""),
        f"- **Training**: FedAvg on NVIDIA FLARE, {params['rounds']} rounds × {params['local_epochs']} "
        f"local epochs, learning rate {params['learning_rate']}, batch "
        f"{params['batch_size'] or 'full'}, L2 {params['l2']}; FLARE job {fl_job.flare_job_id}.",
        "",
        "## Sites",
        *(
            f"- {s['site']} ({s['organisation']}): {s.get('n_train', '?')} training, "
            f"{s.get('n_val', '?')} validation persons"
            for s in sites
        ),
        "",
        "## Validation of the global model",
        f"- Pooled validation AUC: {metrics.get('pooled_val_auc')}",
        *(
            f"- {site}: AUC {m.get('val_auc')}, log-loss {m.get('val_loss')}"
            for site, m in (metrics.get("sites") or {}).items()
        ),
        "",
        "## Intended use and limits",
        "Research use within the entitlements of the datasets it was trained on. Not a medical "
        "device; not validated for clinical decisions. Validation sets are one person in five at "
        "each site (fixed split); no external validation.",
    ]
    return "\n".join(lines) + "\n"


@write_transaction
def fl_release(*, actor: AbstractBaseUser, fl_job: FlJob, name: str = "") -> TrainedModel:
    """The release gate: the global model enters the registry as the next version of ``name``."""
    fl_job = _guard_release(actor, fl_job)
    name = (
        name
        or fl_job.analysis.title
        or f"Death within {fl_job.analysis.params['outcome']['days']} days"
    ).strip()[:200]
    version = (TrainedModel.objects.filter(name=name).aggregate(m=Max("version"))["m"] or 0) + 1
    report = fl_job.progress or {}
    final = report.get("final") or {}
    last_round = (report.get("rounds") or [{}])[-1]
    nodes = {n.name: n for n in fl_job.nodes.select_related("organisation")}
    sites = []
    for site, entry in (last_round.get("sites") or {}).items():
        if entry.get("status") == "contributed":
            node = nodes.get(site)
            sites.append(
                {
                    "site": site,
                    "node": node.pk if node else None,
                    "organisation": str(node.organisation) if node else "",
                    "n_train": entry.get("n_train"),
                    "n_val": entry.get("n_val"),
                }
            )
    metrics = {
        "pooled_val_auc": (final.get("pooled") or {}).get("val_auc"),
        "sites": {
            s: {"val_auc": v.get("val_auc"), "val_loss": v.get("val_loss")}
            for s, v in (final.get("sites") or {}).items()
            if v.get("status") == "contributed"
        },
        "rounds": [
            {"round": r["round"], **{k: r["pooled"].get(k) for k in ("train_loss", "val_auc")}}
            for r in report.get("rounds") or []
        ],
    }
    model = TrainedModel.objects.create(
        name=name,
        version=version,
        fl_job=fl_job,
        template=fl_job.global_model["template"],
        features=fl_job.global_model["features"],
        parameters=fl_job.global_model["parameters"],
        training_params=fl_job.analysis.params,
        metrics=metrics,
        sites=sites,
        model_card=model_card(fl_job, name, version, sites, metrics),
        released_by=actor,
    )
    model.datasets.set(fl_job.analysis.datasets.all())
    fl_job.decided_by, fl_job.decided_at = actor, timezone.now()
    _transition(fl_job, FlJobStatus.RELEASED, actor=actor, model=model.pk)
    record(
        "model.registered",
        actor=actor,
        obj=model,
        payload={
            "name": name,
            "version": version,
            "fl_job": fl_job.pk,
            "sites": [s["site"] for s in sites],
        },
    )
    return model


@write_transaction
def fl_decline(*, actor: AbstractBaseUser, fl_job: FlJob, reason: str = "") -> FlJob:
    """The release gate refuses: the global model is dropped, the job ends declined."""
    fl_job = _guard_release(actor, fl_job)
    fl_job.decided_by, fl_job.decided_at = actor, timezone.now()
    fl_job.global_model = None  # a declined model is not kept
    _transition(
        fl_job, FlJobStatus.DECLINED, actor=actor, reason=reason.strip() or "Release declined."
    )
    return fl_job


def can_download(user: AbstractBaseUser, model: TrainedModel) -> bool:
    """Researchers with an active federated-learning entitlement on every training dataset."""
    if not getattr(user, "is_authenticated", False):
        return False
    if is_platform_admin(user):
        return True
    datasets = list(model.datasets.all())
    return bool(datasets) and not missing_fl_entitlements(user, datasets)


def model_download(*, actor: AbstractBaseUser, model: TrainedModel) -> dict[str, Any]:
    """What a download contains (audited): parameters, inputs and scaling, card and provenance."""
    from optima_node.flare.features import SCALING

    if not can_download(actor, model):
        raise PermissionDenied("No active federated-learning entitlement on the training datasets.")
    record("model.downloaded", actor=actor, obj=model, payload={"version": model.version})
    return {
        "name": model.name,
        "version": model.version,
        "template": model.template,
        "hidden_units": model.training_params.get("hidden_units"),
        "features": model.features,
        "scaling": {f: list(SCALING[f]) for f in model.features},
        "parameters": model.parameters,
        "outcome": model.training_params.get("outcome"),
        "cohort": model.training_params.get("cohort"),
        "metrics": model.metrics,
        "sites": model.sites,
        "training_job": {
            "analysis": model.fl_job.analysis_id,
            "flare_job_id": model.fl_job.flare_job_id,
        },
        "model_card": model.model_card,
    }


def predict(model_payload: dict[str, Any], x_standardised: np.ndarray) -> np.ndarray:
    """Probabilities from a downloaded model (for users and tests)."""
    params = FederatedLearningParams.model_validate(
        {
            # Only the template, its size and the features matter here; the cohort is a
            # placeholder the schema requires (any valid concept id).
            "cohort": {"condition_concept_ids": [1]},
            "outcome": {"kind": "death_within_days", "days": 1},
            "template": model_payload["template"],
            "hidden_units": model_payload.get("hidden_units") or 8,
            "covariates": [f for f in model_payload["features"] if f != "stage_known"],
        }
    )
    return template_for(params).predict_proba(
        np.asarray(model_payload["parameters"]), x_standardised
    )
