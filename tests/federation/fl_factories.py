"""Nodes, datasets and entitlements for the federated-learning tests."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from federation.models import Node, NodeDataset
from tests.federation.factories import make_node, publish

FL_POLICY = {
    "require_approval": False,
    "review_before_release": False,
    "min_cell_count": 5,
    "allowed_types": [],
    "federated_learning": True,
    "allowed_model_templates": ["logistic_regression", "mlp"],
}

FL_PARAMS = {
    "cohort": {"condition_concept_ids": [443392]},
    "outcome": {"kind": "death_within_days", "days": 1825},
    "template": "logistic_regression",
    "rounds": 3,
    "local_epochs": 5,
    "learning_rate": 1.0,
    "min_sites": 2,
}


def make_fl_dataset(publisher, title: str = "Cancer cohort"):
    from catalogue.models import Dataset

    return publish(
        Dataset.objects.create(
            publisher=publisher,
            title=title,
            description="Synthetic OMOP cohort.",
            access_modes=["federated_analytics", "federated_learning"],
        )
    )


def make_fl_site(organisation, name: str, *, policy: dict | None = None, dataset=None) -> Node:
    """An approved node whose last heartbeat reported ``policy``, serving a dataset."""
    node, _token = make_node(organisation, name)
    Node.objects.filter(pk=node.pk).update(policy=FL_POLICY if policy is None else policy)
    node.refresh_from_db()
    dataset = dataset or make_fl_dataset(organisation, f"{organisation.name} cancer cohort")
    NodeDataset.objects.create(node=node, dataset=dataset)
    return node


def grant_federated_learning(user, dataset, *, days: int = 90) -> None:
    from guardian.shortcuts import assign_perm

    from accounts.models import Membership
    from governance.models import AccessRequest, Entitlement

    membership = Membership.objects.filter(user=user).select_related("organisation").first()
    request = AccessRequest.objects.create(
        applicant=user, organisation=membership.organisation, project_title="FL study"
    )
    Entitlement.objects.create(
        holder=user,
        dataset=dataset,
        access_mode="federated_learning",
        ends_at=timezone.now() + timedelta(days=days),
        request=request,
        # An entitlement rests on the dataset's current terms of use (when it has some).
        terms_id=getattr(getattr(dataset, "current_version", None), "terms_of_use_id", None),
    )
    assign_perm("catalogue.run_federated_learning", user, dataset)  # as governance keeps it


class FakeFlare:
    """Stands in for the FLARE admin API (``federation.flare.session``) in unit tests."""

    def __init__(self, monkeypatch, tmp_path):
        from federation.flare import session

        self.status = "SUBMITTED"
        self.report: dict | None = None
        self.weights = [0.1, 0.2, -0.3, 0.4, 0.5, 0.0]
        self.submitted: list[str] = []
        self.tokens: dict = {}
        self.aborted: list[str] = []
        self.unreachable = False
        self.tmp_path = tmp_path
        monkeypatch.setattr(session, "submit", self.submit)
        monkeypatch.setattr(session, "job_meta", self.job_meta)
        monkeypatch.setattr(session, "server_report", lambda kit, job_id: self.report)
        monkeypatch.setattr(session, "poll", self.poll)
        monkeypatch.setattr(session, "download_result", self.download_result)
        monkeypatch.setattr(session, "abort", self.abort)

    def _check(self):
        from federation.flare import FlareUnavailable

        if self.unreachable:
            raise FlareUnavailable("cannot connect to the FLARE server: refused")

    def submit(self, kit, folder, token=None):
        self._check()
        if token in self.tokens:
            return self.tokens[token]
        self.submitted.append(str(folder))
        self.tokens[token] = f"flare-{len(self.submitted)}"
        return self.tokens[token]

    def job_meta(self, kit, job_id):
        self._check()
        return {"status": self.status, "job_id": job_id}

    def poll(self, kit, job_id, with_report=True):
        meta = self.job_meta(kit, job_id)
        return meta, (self.report if self.status in ("RUNNING", "DISPATCHED") else None)

    def abort(self, kit, job_id):
        self._check()
        self.aborted.append(job_id)
        self.status = "FINISHED:ABORTED"

    def download_result(self, kit, job_id, destination):
        import json

        import numpy as np

        workspace = destination / "workspace"
        (workspace / "models").mkdir(parents=True, exist_ok=True)
        np.save(workspace / "models" / "server.npy", np.asarray(self.weights))
        (workspace / "optima_metrics.json").write_text(json.dumps(self.report or {}))
        return destination

    @staticmethod
    def report_for(sites, rounds=2, failure=""):
        def site_entry(i):
            return {
                "status": "contributed",
                "n_train": 100 + i,
                "n_val": 25,
                "train_loss": 0.5 - 0.01 * i,
                "val_loss": 0.55,
                "val_auc": 0.7 + 0.01 * i,
            }

        round_rows = [
            {
                "round": r + 1,
                "kind": "train",
                "sites": {s: site_entry(i) for i, s in enumerate(sites)},
                "pooled": {
                    "n_train": 300,
                    "n_val": 75,
                    "train_loss": 0.5 - 0.05 * r,
                    "val_auc": 0.72,
                },
            }
            for r in range(rounds)
        ]
        return {
            "status": "failed" if failure else "finished",
            "current_round": rounds,
            "num_rounds": rounds,
            "rounds": round_rows,
            "final": None
            if failure
            else {
                "round": rounds,
                "kind": "validate",
                "sites": {s: site_entry(i) for i, s in enumerate(sites)},
                "pooled": {"val_auc": 0.74},
            },
            "failure": failure,
        }
