"""Server side of the job: FLARE's FedAvg (a ``ModelController``) with what the portal needs.

* each round sends the global vector to every site with a **timeout**, so a site that stops ends
  the round instead of hanging it; fewer than ``min_sites`` contributions fail the job with a
  reason naming the missing sites (``system_panic``: FLARE ends the job as failed);
* weighted FedAvg of the contributions (weight = the site's training size);
* per-round, per-site metrics (training loss, validation loss and AUC, pooled validation AUC from
  the sites' binned score counts) kept for the admin API's ``show_stats`` and written, with the
  final validation of the global model, to ``optima_metrics.json`` in the job result.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
from nvflare.apis.fl_context import FLContext
from nvflare.app_common.abstract.fl_model import FLModel
from nvflare.app_common.workflows.model_controller import ModelController
from nvflare.widgets.info_collector import GroupInfoCollector, InfoCollector

from optima_node.flare.templates import auc_from_histograms

NUMPY_KEY = "numpy_key"
METRICS_FILE = "optima_metrics.json"


def _site(result: FLModel) -> str:
    meta = result.meta or {}
    return str(meta.get("site") or meta.get("client_name") or "?")


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


class OptimaFedAvg(ModelController):
    def __init__(
        self,
        *,
        num_rounds: int = 5,
        min_sites: int = 2,
        task_timeout: int = 3600,
        expected_sites: list[str] | None = None,
        persistor_id: str = "persistor",
    ):
        super().__init__(persistor_id=persistor_id)
        self.num_rounds = num_rounds
        self.min_sites = min_sites
        self.task_timeout = task_timeout
        self.expected_sites = list(expected_sites or [])
        self.report: dict[str, Any] = {
            "status": "starting",
            "current_round": 0,
            "num_rounds": num_rounds,
            "rounds": [],
            "final": None,
            "failure": "",
        }

    # --- the admin API's show_stats ---------------------------------------------------------
    def handle_event(self, event_type: str, fl_ctx: FLContext):
        super().handle_event(event_type, fl_ctx)
        if event_type == InfoCollector.EVENT_TYPE_GET_STATS:
            collector = fl_ctx.get_prop(InfoCollector.CTX_KEY_STATS_COLLECTOR, None)
            if isinstance(collector, GroupInfoCollector):
                collector.add_info(group_name="optima", info={"report": json.dumps(self.report)})

    # --- helpers -----------------------------------------------------------------------------
    def _summarise(self, results: list[FLModel], targets: list[str], round_no: int, kind: str):
        sites: dict[str, dict[str, Any]] = {}
        pos_total: np.ndarray | None = None
        neg_total: np.ndarray | None = None
        for result in results:
            name = _site(result)
            meta, metrics = result.meta or {}, result.metrics or {}
            if meta.get("refused"):
                sites[name] = {"status": "refused", "reason": str(meta["refused"])[:300]}
                continue
            entry = {
                "status": "contributed",
                "n_train": int(metrics.get("n_train", 0) or 0),
                "n_val": int(metrics.get("n_val", 0) or 0),
                "train_loss": _num(metrics.get("train_loss")),
                "val_loss": _num(metrics.get("val_loss")),
                "val_auc": _num(metrics.get("val_auc")),
            }
            sites[name] = entry
            pos, neg = metrics.get("val_hist_pos"), metrics.get("val_hist_neg")
            if pos is not None and neg is not None:
                pos_total = np.asarray(pos) + (pos_total if pos_total is not None else 0)
                neg_total = np.asarray(neg) + (neg_total if neg_total is not None else 0)
        for name in targets:
            sites.setdefault(
                name, {"status": "no_answer", "reason": "no answer before the timeout"}
            )
        contributed = {k: v for k, v in sites.items() if v["status"] == "contributed"}
        n_train = sum(v["n_train"] for v in contributed.values())
        losses = [
            (v["train_loss"], v["n_train"])
            for v in contributed.values()
            if v["train_loss"] is not None
        ]
        return {
            "round": round_no,
            "kind": kind,
            "sites": sites,
            "pooled": {
                "n_train": n_train,
                "n_val": sum(v["n_val"] for v in contributed.values()),
                "train_loss": (sum(x * w for x, w in losses) / sum(w for _, w in losses))
                if losses and sum(w for _, w in losses)
                else None,
                "val_auc": auc_from_histograms(pos_total.tolist(), neg_total.tolist())
                if pos_total is not None
                else None,
            },
        }

    def _fail(self, reason: str) -> None:
        self.report.update(status="failed", failure=reason)
        self._write_report()
        self.error(reason)
        self.system_panic(reason, self.fl_ctx)

    def _write_report(self) -> None:
        try:
            workspace = self.fl_ctx.get_engine().get_workspace()
            root = workspace.get_result_root(self.fl_ctx.get_job_id())
            os.makedirs(root, exist_ok=True)
            with open(os.path.join(root, METRICS_FILE), "w", encoding="utf-8") as handle:
                json.dump(self.report, handle)
        except Exception as exc:
            self.warning(f"cannot write {METRICS_FILE}: {exc}")

    # --- the workflow --------------------------------------------------------------------------
    def run(self) -> None:
        model = self.load_model()
        targets = [c.name for c in self.engine.get_clients()]
        if self.expected_sites:
            missing = sorted(set(self.expected_sites) - set(targets))
            targets = [t for t in targets if t in self.expected_sites]
            if len(targets) < self.min_sites:
                self._fail(f"sites not connected: {', '.join(missing)}")
                return
        self.report.update(status="running", sites=targets, started=time.time())
        for round_no in range(self.num_rounds):
            if self.abort_signal.triggered:
                return
            self.report["current_round"] = round_no + 1
            model.current_round = round_no
            model.total_rounds = self.num_rounds
            results = self.send_model_and_wait(
                task_name="train", data=model, targets=targets, timeout=self.task_timeout
            )
            if self.abort_signal.triggered:
                return
            summary = self._summarise(results, targets, round_no + 1, "train")
            self.report["rounds"].append(summary)
            contributions = [
                r
                for r in results
                if not (r.meta or {}).get("refused") and r.params and NUMPY_KEY in r.params
            ]
            if len(contributions) < self.min_sites:
                absent = sorted(
                    k for k, v in summary["sites"].items() if v["status"] != "contributed"
                )
                self._fail(
                    f"round {round_no + 1}: {len(contributions)} of the required {self.min_sites} "
                    f"sites contributed (missing: {', '.join(absent) or 'none'})"
                )
                return
            weights = np.array([float((r.metrics or {}).get("n_train", 1)) for r in contributions])
            stacked = np.stack(
                [np.asarray(r.params[NUMPY_KEY], dtype=float).ravel() for r in contributions]
            )
            average = (weights[:, None] * stacked).sum(axis=0) / weights.sum()
            model = FLModel(params={NUMPY_KEY: average}, current_round=round_no)
            self.save_model(model)
            self._write_report()
            # Later rounds go to the sites that contributed.
            targets = [_site(r) for r in contributions]
        results = self.send_model_and_wait(
            task_name="validate", data=model, targets=targets, timeout=self.task_timeout
        )
        self.report["final"] = self._summarise(results, targets, self.num_rounds, "validate")
        self.report.update(status="finished", finished=time.time())
        self._write_report()
