"""The registry of analysis kinds: what each kind declares is what the call sites use."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from federation import analysis_types as kinds
from federation.forms import AnalysisForm
from federation.models import Analysis
from optima_node.schemas import LogisticRegressionResult
from tests.federation.fl_factories import FL_PARAMS

TEMPLATES = Path(kinds.__file__).parent / "templates"
COHORT = {"condition_concept_ids": [443392]}


def test_every_node_kind_can_be_pooled_shown_and_exported():
    for kind in kinds.node_kinds():
        assert kind.iterative or kind.pool is not None, kind.key
        assert (TEMPLATES / kind.result_template).exists(), kind.result_template
        assert kind.params_schema()["type"] == "object"


def test_federated_learning_is_a_kind_but_not_offered_to_the_nodes():
    fl = kinds.get_kind(kinds.FL_TYPE, kinds.FL_VERSION)
    assert fl.engine == "flare" and fl.access_mode == "federated_learning"
    assert fl not in kinds.node_kinds()
    assert kinds.FL_TYPE not in {t for t, _ in kinds.TYPE_CHOICES}
    choices = dict(AnalysisForm(datasets=Analysis.objects.none()).fields["analysis"].choices)
    assert f"{kinds.FL_TYPE}:{kinds.FL_VERSION}" not in choices
    assert fl.cancel_refusal and not fl.runs_on_nodes


def test_one_validator_for_every_kind():
    # Federated learning keeps its None parameters (batch_size None: the full batch) …
    normalised = kinds.validate_params(kinds.FL_TYPE, kinds.FL_VERSION, FL_PARAMS)
    assert "batch_size" in normalised
    # … the node kinds leave them out; both report problems with their path.
    count = kinds.validate_params("cohort_count", 1, {"cohort": COHORT})
    assert count["stratify_by"] == [] and None not in count.values()
    with pytest.raises(ValidationError) as err:
        kinds.validate_params(kinds.FL_TYPE, kinds.FL_VERSION, {**FL_PARAMS, "rounds": 0})
    assert any(m.startswith("rounds:") for m in err.value.message_dict["params"])
    with pytest.raises(ValidationError) as err:
        kinds.validate_params("deep_learning", 1, {})
    assert "type" in err.value.message_dict


def test_the_iterative_kind_checks_a_rounds_answer_against_its_terms_and_beta():
    glm = kinds.get_kind(kinds.GLM, 1)
    outcome = {"kind": "death_within_days", "days": 365}
    covariates = ["age_at_index", "sex_male"]
    params = kinds.validate_params(
        kinds.GLM, 1, {"cohort": COHORT, "outcome": outcome, "covariates": covariates}
    )
    terms = kinds.terms_for(params)
    state = glm.initial_state(params)
    assert state == {"beta": [0.0] * len(terms)}
    size = len(terms)
    answer = {
        "terms": terms,
        "beta": [0.0] * size,
        "n": 40,
        "score": [0.0] * size,
        "information": [[float(i == j) for j in range(size)] for i in range(size)],
        "deviance": 1.0,
        "centres": {"age_at_index": 65.0},
    }
    assert glm.check_result(LogisticRegressionResult.model_validate(answer), params, state) == ""
    wrong = LogisticRegressionResult.model_validate({**answer, "terms": list(reversed(terms))})
    assert "differ" in glm.check_result(wrong, params, state)
    short = {**state, "beta": [0.0] * (size + 1)}
    assert glm.check_result(LogisticRegressionResult.model_validate(answer), params, short) == (
        "beta has the wrong length"
    )
    # An agent that does not centre (an older one) is refused, not silently pooled.
    uncentred = LogisticRegressionResult.model_validate({**answer, "centres": {}})
    assert "centred at" in glm.check_result(uncentred, params, state)


def test_form_fields_become_each_kinds_parameters():
    km = kinds.get_kind("kaplan_meier", 1).form_params({"km_stratify_by": "sex"})
    assert km == {"stratify_by": "sex", "time_unit_days": 30, "max_time_units": 120}
    glm = kinds.get_kind(kinds.GLM, 1).form_params({"outcome_days": 90, "covariates": ["sex"]})
    assert glm["outcome"] == {"kind": "death_within_days", "days": 90}
    assert kinds.get_kind("characterisation", 1).form_params({"stratify_by": ["sex"]}) == {}
