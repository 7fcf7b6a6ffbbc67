"""The disclosure gate: the last check before a result leaves the node. It fails closed.

The analyses already suppress, coarsen or refuse; the gate does not trust them. It validates the
output against the typed result model for (type, version) and re-checks every rule it can verify
from the output and the site policy. Anything it cannot verify is refused with a reason code, and
a refusal never carries partial statistics.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from optima_node.policy import Policy
from optima_node.schemas import (
    BINARY_COVARIATES,
    COVARIATE_ORDER,
    RESULT_MODELS,
    CharacterisationResult,
    CohortCountResult,
    CountRow,
    DatabaseProfileResult,
    KaplanMeierResult,
    LogisticRegressionResult,
    ReasonCode,
)


@dataclass(frozen=True)
class Released:
    result: BaseModel

    def payload(self) -> dict[str, Any]:
        return self.result.model_dump(mode="json")


@dataclass(frozen=True)
class Refused:
    reason_code: ReasonCode


Decision = Released | Refused


class _Unverifiable(Exception):
    def __init__(self, reason: ReasonCode = ReasonCode.UNVERIFIABLE_OUTPUT) -> None:
        super().__init__(reason.value)
        self.reason = reason


def gate(analysis_type: str, version: int, output: Any, policy: Policy) -> Decision:
    """Release ``output`` as the typed result for (type, version), or refuse with a reason code."""
    model = RESULT_MODELS.get((analysis_type, version))
    if model is None:
        return Refused(ReasonCode.UNSUPPORTED_ANALYSIS)
    if not policy.allows(analysis_type):
        return Refused(ReasonCode.POLICY_TYPE_NOT_ALLOWED)
    try:
        # Re-validate from plain data even when handed a model: model_construct skips validation.
        data = output.model_dump() if isinstance(output, BaseModel) else output
        if not isinstance(data, dict):
            raise _Unverifiable
        _require_finite(data)
        result = model.model_validate(data)
        _CHECKS[model](result, policy)
    except _Unverifiable as exc:
        return Refused(exc.reason)
    except (ValidationError, TypeError, ValueError, KeyError):
        return Refused(ReasonCode.UNVERIFIABLE_OUTPUT)
    return Released(result)


def _require_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unverifiable
    if isinstance(value, dict):
        for item in value.values():
            _require_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _require_finite(item)


def _check_cells(rows: Iterable[CountRow], k: int) -> None:
    for row in rows:
        if row.suppressed:
            continue
        if row.count is None or 0 < row.count < k:
            raise _Unverifiable


def _check_cohort_count(result: CohortCountResult, policy: Policy) -> None:
    expected = set(result.stratify_by)
    seen: set[tuple[str, ...]] = set()
    for row in result.rows:
        if set(row.strata) != expected:
            raise _Unverifiable
        key = tuple(row.strata[name] for name in result.stratify_by)
        if key in seen:
            raise _Unverifiable
        seen.add(key)
    _check_cells(result.rows, policy.min_cell_count)
    steps = [row.strata.get("step") for row in result.attrition]
    if any(set(row.strata) != {"step", "rule"} for row in result.attrition) or steps != [
        str(i) for i in range(len(steps))
    ]:
        raise _Unverifiable
    _check_cells(result.attrition, policy.min_cell_count)
    released = [row.count for row in result.attrition if not row.suppressed]
    if any(0 < a - b < policy.min_cell_count for a, b in itertools.pairwise(released)):
        raise _Unverifiable


def _check_characterisation(result: CharacterisationResult, policy: Policy) -> None:
    k = policy.min_cell_count
    _check_cells([result.person_count, result.deaths], k)
    for name, rows in (
        ("sex", result.by_sex),
        ("age_group", result.by_age_group),
        ("index_year", result.by_index_year),
        ("follow_up", result.by_follow_up),
    ):
        if any(set(row.strata) != {name} for row in rows):
            raise _Unverifiable
        _check_cells(rows, k)
        # A section adds up to the person count: one lone suppressed cell would be derivable.
        if not result.person_count.suppressed and sum(row.suppressed for row in rows) == 1:
            raise _Unverifiable


def _check_kaplan_meier(result: KaplanMeierResult, policy: Policy) -> None:
    if result.time_unit_days < policy.km_min_time_unit_days:
        raise _Unverifiable(ReasonCode.TIME_UNIT_BELOW_MINIMUM)
    k = policy.min_cell_count
    names = [s.stratum for s in result.strata] + list(result.suppressed_strata)
    if len(set(names)) != len(names) or not result.strata:
        raise _Unverifiable
    for stratum in result.strata:
        times = [row.time for row in stratum.rows]
        if times != sorted(set(times)) or (times and times[-1] > result.max_time_units):
            raise _Unverifiable
        for row in stratum.rows:
            for count in (row.events, row.censored):
                if 0 < count < k:
                    raise _Unverifiable


def _check_logistic_regression(result: LogisticRegressionResult, policy: Policy) -> None:
    terms = result.terms
    allowed_order = ["intercept", *COVARIATE_ORDER]
    if not terms or terms[0] != "intercept" or terms != [t for t in allowed_order if t in terms]:
        raise _Unverifiable
    p = len(terms)
    if len(result.beta) != p or len(result.score) != p or len(result.information) != p:
        raise _Unverifiable
    if any(len(row) != p for row in result.information):
        raise _Unverifiable
    if p > policy.glm_max_params_ratio * result.n:
        raise _Unverifiable(ReasonCode.GLM_TOO_MANY_PARAMETERS)
    # Each outcome level must hold at least min_cell_count persons, so n cannot be below twice that.
    if result.n < 2 * policy.min_cell_count:
        raise _Unverifiable(ReasonCode.OUTCOME_LEVEL_TOO_SMALL)
    info = result.information
    for i in range(p):
        for j in range(i):
            scale = max(abs(info[i][j]), abs(info[j][i]), 1.0)
            if abs(info[i][j] - info[j][i]) > 1e-9 * scale:
                raise _Unverifiable
    if all(b == 0.0 for b in result.beta):
        _check_glm_cells_at_zero(result, policy.min_cell_count)


def _check_glm_cells_at_zero(result: LogisticRegressionResult, k: int) -> None:
    """At β = 0 every weight is ¼, so the output itself gives each 0/1 term's cells:
    XᵀWX[0][j] = ¼·#(x_j = 1), score[0] = events − n/2, score[j] = #(x_j = 1, y = 1) − #(x_j = 1)/2.
    Re-check the analysis' per-term rule from them (the first round is the one most revealing)."""
    n = result.n
    events = round(result.score[0] + n / 2)
    for j, term in enumerate(result.terms):
        if term not in BINARY_COVARIATES:
            continue
        with_level = round(4 * result.information[0][j])
        with_level_events = round(result.score[j] + with_level / 2)
        cells = (
            with_level_events,
            with_level - with_level_events,
            events - with_level_events,
            (n - events) - (with_level - with_level_events),
        )
        if any(0 < cell < k for cell in cells):
            raise _Unverifiable(ReasonCode.GLM_COVARIATE_CELL_TOO_SMALL)


_CHECKS: dict[type[BaseModel], Any] = {
    CohortCountResult: _check_cohort_count,
    CharacterisationResult: _check_characterisation,
    KaplanMeierResult: _check_kaplan_meier,
    LogisticRegressionResult: _check_logistic_regression,
}


def _check_database_profile(result: DatabaseProfileResult, policy: Policy) -> None:
    k, step = policy.min_cell_count, policy.profile_rounding
    if result.rounding != step:
        raise _Unverifiable
    cells = [result.person_count, *result.by_sex_age, *result.cancers]
    cells += [t.records for t in result.tables]
    _check_cells(cells, k)
    if any(not c.suppressed and c.count % step for c in cells):
        raise _Unverifiable
    if any(set(c.strata) != {"sex", "age_group"} for c in result.by_sex_age):
        raise _Unverifiable
    if not result.person_count.suppressed and sum(c.suppressed for c in result.by_sex_age) == 1:
        raise _Unverifiable
    # A newest date travels only with a released, non-zero record count.
    if any(t.newest_date and (t.records.suppressed or not t.records.count) for t in result.tables):
        raise _Unverifiable


_CHECKS[DatabaseProfileResult] = _check_database_profile
