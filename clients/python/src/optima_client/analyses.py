"""Federated analyses: start one with keyword arguments, follow it, read its result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from .errors import AnalysisFailedError, OptimaError, PartialResultError, RefusedByPolicyError
from .results import result_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .client import Client

FINISHED_RUN_STATUSES = frozenset(
    {"completed", "failed", "rejected_by_policy", "expired", "cancelled"}
)
Sex = Literal["male", "female"]


@dataclass
class Cohort:
    """Who is in the cohort: persons with one of the conditions (and their descendants), at their
    first such diagnosis (the index date), optionally restricted by age, sex and index date.

    Attributes:
        condition_concept_ids: OMOP condition concept ids, e.g. ``[4115276]`` (NSCLC).
        include_descendants: Also every descendant concept (default True).
        age_min: Youngest age at the index date.
        age_max: Oldest age at the index date.
        sex: ``"male"`` or ``"female"``.
        index_date_min: Earliest index date, ``"YYYY-MM-DD"``.
        index_date_max: Latest index date, ``"YYYY-MM-DD"``.
        circe: An ATLAS/Circe cohort expression instead of the above (see
            :meth:`Cohort.from_circe` and docs/cohorts.md).
    """

    condition_concept_ids: list[int] = field(default_factory=list)
    include_descendants: bool = True
    age_min: int | None = None
    age_max: int | None = None
    sex: Sex | None = None
    index_date_min: str | None = None
    index_date_max: str | None = None
    circe: dict[str, Any] | None = None

    @classmethod
    def from_circe(cls, expression: dict[str, Any] | str | Path) -> Cohort:
        """A cohort from an ATLAS/Circe cohort expression: a dict, its JSON text, or the path of
        a JSON file exported from ATLAS."""
        if isinstance(expression, Path) or (
            isinstance(expression, str) and not expression.lstrip().startswith("{")
        ):
            expression = Path(expression).read_text(encoding="utf-8")
        if isinstance(expression, str):
            expression = json.loads(expression)
        return cls(circe=dict(expression))

    def to_params(self) -> dict[str, Any]:
        """The ``cohort`` parameter the portal takes."""
        if self.circe is not None:
            return {"circe": self.circe}
        if not self.condition_concept_ids:
            raise ValueError("A cohort needs condition_concept_ids or a Circe expression.")
        values = asdict(self)
        values.pop("circe")
        return {k: v for k, v in values.items() if v is not None}


CohortLike = Cohort | dict[str, Any] | Sequence[int]
DatasetsLike = Iterable[int] | pd.DataFrame


def _cohort_params(cohort: CohortLike) -> dict[str, Any]:
    if isinstance(cohort, Cohort):
        return cohort.to_params()
    if isinstance(cohort, dict):
        return dict(cohort)
    return Cohort(condition_concept_ids=[int(c) for c in cohort]).to_params()


def _dataset_ids(datasets: DatasetsLike) -> list[int]:
    if isinstance(datasets, pd.DataFrame):
        column = "dataset_id" if "dataset_id" in datasets.columns else "id"
        return [int(i) for i in datasets[column]]
    return [int(i) for i in datasets]


class AnalysisHandle:
    """One analysis on the portal: follow it with :meth:`wait`, read it with :meth:`result`.

    Attributes:
        id: The analysis' number on the portal (``/federation/analyses/<id>/`` in the web UI).
        type: ``cohort_count``, ``characterisation``, ``kaplan_meier`` or
            ``logistic_regression``.
    """

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data
        self.id: int = int(data["id"])
        self.type: str = str(data["type"])

    def __repr__(self) -> str:
        return f"<AnalysisHandle {self.id} {self.type} {self.status}>"

    @property
    def status(self) -> str:
        """``running``, ``completed``, ``failed`` or ``cancelled`` (as of the last refresh)."""
        return str(self.data.get("status"))

    @property
    def runs(self) -> pd.DataFrame:
        """The node runs: ``node``, ``organisation``, ``round``, ``status``, ``reason``."""
        return pd.DataFrame(
            self.data.get("runs", []), columns=["node", "organisation", "round", "status", "reason"]
        )

    def refresh(self) -> AnalysisHandle:
        """Read the analysis again from the portal."""
        self.data = self._client.request("GET", f"analyses/{self.id}/")
        return self

    def cancel(self) -> AnalysisHandle:
        """Stop the analysis (its open node runs are cancelled)."""
        self.data = self._client.request("POST", f"analyses/{self.id}/cancel/")
        return self

    def wait(
        self, *, progress: bool = True, timeout: float = 3600.0, poll_interval: float = 1.0
    ) -> AnalysisHandle:
        """Wait until the analysis has finished (completed, failed or cancelled).

        Args:
            progress: Show a progress bar of the node runs done in the current round (and the
                round, for the iterative regression); it works in a terminal and in Jupyter.
            timeout: Seconds to wait at most.
            poll_interval: Seconds between two looks at the portal.

        Raises:
            TimeoutError: When it is still running after ``timeout`` seconds.
        """
        bar = _progress_bar(self.type) if progress else None
        deadline = time.monotonic() + timeout
        try:
            while True:
                if bar is not None:
                    _update_bar(bar, self.data)
                if self.status != "running":
                    return self
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Analysis {self.id} still running after {timeout:.0f}s.")
                time.sleep(poll_interval)
                self.refresh()
        finally:
            if bar is not None:
                bar.close()

    def result(self, *, allow_partial: bool = False, wait: bool = True) -> pd.DataFrame:
        """The result as a DataFrame (waiting for it first, without a progress bar).

        Kaplan–Meier: one row per stratum and time unit (survival with its 95% interval, numbers
        at risk); logistic regression: the coefficients indexed by term; count: one row per
        stratum; characterisation: one row per category. What is not tabular (log-rank test,
        medians, deviance, contributing nodes, …) is in ``attrs``; see
        :mod:`optima_client.results`.

        Raises:
            RefusedByPolicyError: A node's disclosure policy refused the analysis.
            AnalysisFailedError: The analysis failed or was cancelled.
            PartialResultError: Not every node contributed and ``allow_partial`` is False.
        """
        if wait and self.status == "running":
            self.wait(progress=False)
        self._raise_if_unsuccessful()
        if self.data.get("partial") and not allow_partial:
            raise PartialResultError(
                self.data.get("reason") or "Partial result: not every node contributed.",
                analysis_id=self.id,
                runs=self.data.get("runs", []),
            )
        return result_frame(self.type, self.data.get("result") or {})

    def plot(self, *, title: str | None = None, allow_partial: bool = False) -> Figure:
        """A matplotlib figure of the result: Kaplan–Meier curves with 95% confidence bands and
        the numbers at risk, or a forest plot of the odds ratios (needs the ``[plot]`` extra)."""
        from .plotting import plot_result

        return plot_result(self.result(allow_partial=allow_partial), title=title)

    def _raise_if_unsuccessful(self) -> None:
        status = self.status
        if status == "completed":
            return
        runs = self.data.get("runs", [])
        reason = self.data.get("reason") or f"The analysis is {status}."
        if status == "running":
            raise OptimaError(f"Analysis {self.id} is still running.")
        refused = [r for r in runs if r.get("status") == "rejected_by_policy"]
        cls = RefusedByPolicyError if refused else AnalysisFailedError
        if refused and not self.data.get("reason"):
            reason = "; ".join(f"{r['node']}: {r['reason']}" for r in refused)
        raise cls(reason, analysis_id=self.id, runs=runs)


def _progress_bar(kind: str):
    from tqdm.auto import tqdm

    return tqdm(total=0, desc=kind.replace("_", " "), unit="run", leave=True)


def _update_bar(bar, data: dict[str, Any]) -> None:
    """Runs done out of the current round's runs; the round in the description."""
    current = int(data.get("current_round") or 1)
    runs = [r for r in data.get("runs", []) if int(r.get("round", 1)) == current]
    done = sum(1 for r in runs if r.get("status") in FINISHED_RUN_STATUSES)
    label = f"{data.get('type', '').replace('_', ' ')} round {current}"
    if bar.desc.removesuffix(": ") != label or bar.total != len(runs):  # a new round
        bar.reset(total=len(runs))
        bar.set_description(label, refresh=False)
    bar.n = done
    bar.set_postfix_str(str(data.get("status")), refresh=False)
    bar.refresh()


class Analyses:
    """Federated analyses: each method starts one on the nodes serving ``datasets`` and returns
    an :class:`AnalysisHandle` at once. Every method takes:

    Args:
        datasets: Dataset ids (the ``id`` column of ``Client.datasets()``), or such a DataFrame
            (its ``id`` or ``dataset_id`` column). You need an active federated-analytics
            entitlement on each (else :class:`~optima_client.errors.NotEntitledError`).
        cohort: A :class:`Cohort`, the portal's ``cohort`` dict, or a list of condition concept
            ids.
        title: A title to find the analysis by in the web UI.
        min_nodes: How many nodes must answer (default: all of them).
        deadline_hours: Each node's run expires when it has not answered within this many hours.

    Invalid parameters raise :class:`~optima_client.errors.ValidationError` with the portal's
    message per field.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def _start(
        self,
        analysis_type: str,
        datasets: DatasetsLike,
        params: dict[str, Any],
        *,
        title: str,
        min_nodes: int | None,
        deadline_hours: int,
    ) -> AnalysisHandle:
        body: dict[str, Any] = {
            "type": analysis_type,
            "version": 1,
            "datasets": _dataset_ids(datasets),
            "params": params,
            "title": title,
            "deadline_hours": deadline_hours,
        }
        if min_nodes is not None:
            body["min_nodes"] = min_nodes
        return AnalysisHandle(self._client, self._client.request("POST", "analyses/", json=body))

    def get(self, analysis_id: int) -> AnalysisHandle:
        """A handle on one of your analyses (started here or in the web UI)."""
        return AnalysisHandle(self._client, self._client.request("GET", f"analyses/{analysis_id}/"))

    def list(self) -> pd.DataFrame:
        """Your analyses, newest first: ``id``, ``title``, ``type``, ``status``, ``partial``, …"""
        rows = list(self._client._pages("analyses/", {}))
        columns = ["id", "title", "type", "version", "status", "partial", "created_at"]
        return pd.DataFrame(rows, columns=columns)

    def count(
        self,
        datasets: DatasetsLike,
        cohort: CohortLike,
        *,
        stratify_by: Sequence[Literal["sex", "age_group", "index_year"]] = (),
        title: str = "",
        min_nodes: int | None = None,
        deadline_hours: int = 24,
    ) -> AnalysisHandle:
        """Count the cohort, optionally by ``sex``, ``age_group`` and/or ``index_year``."""
        params = {"cohort": _cohort_params(cohort), "stratify_by": list(stratify_by)}
        return self._start(
            "cohort_count",
            datasets,
            params,
            title=title,
            min_nodes=min_nodes,
            deadline_hours=deadline_hours,
        )

    def characterisation(
        self,
        datasets: DatasetsLike,
        cohort: CohortLike,
        *,
        title: str = "",
        min_nodes: int | None = None,
        deadline_hours: int = 24,
    ) -> AnalysisHandle:
        """Describe the cohort: persons, deaths, and counts by sex, age group, index year and
        follow-up."""
        return self._start(
            "characterisation",
            datasets,
            {"cohort": _cohort_params(cohort)},
            title=title,
            min_nodes=min_nodes,
            deadline_hours=deadline_hours,
        )

    def kaplan_meier(
        self,
        datasets: DatasetsLike,
        cohort: CohortLike,
        *,
        stratify_by: Literal["none", "sex", "age_group"] = "none",
        time_unit_days: int = 30,
        max_time_units: int = 120,
        title: str = "",
        min_nodes: int | None = None,
        deadline_hours: int = 24,
    ) -> AnalysisHandle:
        """Overall survival from the index date, pooled over the nodes.

        Args:
            stratify_by: ``"none"``, ``"sex"`` or ``"age_group"``.
            time_unit_days: Length of one time unit in days (1 .. 3660); the curves are binned
                to it.
            max_time_units: Follow-up horizon in time units (1 .. 10000).
        """
        params = {
            "cohort": _cohort_params(cohort),
            "stratify_by": stratify_by,
            "time_unit_days": time_unit_days,
            "max_time_units": max_time_units,
        }
        return self._start(
            "kaplan_meier",
            datasets,
            params,
            title=title,
            min_nodes=min_nodes,
            deadline_hours=deadline_hours,
        )

    def logistic_regression(
        self,
        datasets: DatasetsLike,
        cohort: CohortLike,
        *,
        outcome_days: int = 365,
        covariates: Sequence[Literal["age_at_index", "sex_male", "index_year"]] = (
            "age_at_index",
            "sex_male",
        ),
        title: str = "",
        min_nodes: int | None = None,
        deadline_hours: int = 24,
    ) -> AnalysisHandle:
        """Federated logistic regression of death within ``outcome_days`` of the index date
        (Fisher scoring over rounds, as DataSHIELD's ``ds.glm``).

        Args:
            outcome_days: The outcome is death within this many days of the index date.
            covariates: Any of ``age_at_index``, ``sex_male``, ``index_year``.
        """
        params = {
            "cohort": _cohort_params(cohort),
            "outcome": {"kind": "death_within_days", "days": outcome_days},
            "covariates": list(covariates),
        }
        return self._start(
            "logistic_regression",
            datasets,
            params,
            title=title,
            min_nodes=min_nodes,
            deadline_hours=deadline_hours,
        )
