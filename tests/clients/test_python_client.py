"""optima-client against a live network (tests/clients/conftest.py): no mocked HTTP. Each result
the client gives equals the web UI's CSV download of the same analysis."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from optima_client import Client, Cohort, NotEntitledError, RefusedByPolicyError, ValidationError

from tests.node.circe_definitions import cohort, concept, crit, cset, rule
from tests.processes import ROOT

pytestmark = [pytest.mark.slow_check, pytest.mark.integration]

LUNG = [4115276, 4110591]  # NSCLC and SCLC condition concepts of the synthetic OMOP databases
BREAST = 4112853
# ATLAS's lung cancer phenotype entry with an age rule (as tests/federation/test_circe_end_to_end).
CIRCE_LUNG_AGED_50 = cohort(
    [cset(0, "Lung cancer", concept(LUNG[0], "Malignant tumor of lung", descendants=True))],
    [crit("ConditionOccurrence", 0)],
    prior=365,
    rules=[rule("aged 50 or more", demographics=[{"Age": {"Value": 50, "Op": "gte"}}])],
)


@pytest.fixture(scope="module")
def client(live_network):
    return Client(live_network.url, live_network.token)


@pytest.fixture(scope="module")
def web(live_network):
    return live_network.web_session()


def web_csv(live_network, web, analysis_id: int) -> pd.DataFrame:
    response = web.get(
        f"{live_network.url}federation/analyses/{analysis_id}/result.csv", timeout=30
    )
    response.raise_for_status()
    return pd.read_csv(io.StringIO(response.text))


def test_it_reads_url_and_token_from_the_environment(live_network, monkeypatch):
    monkeypatch.setenv("OPTIMA_URL", live_network.url)
    monkeypatch.setenv("OPTIMA_TOKEN", live_network.token)
    assert Client().me()["username"] == "researcher"


def test_it_lists_the_lung_datasets_with_ids_as_the_api_does(client, live_network):
    frame = client.datasets(indication="lung", mode="federated_analytics")
    status, body = live_network.api(
        "GET", "datasets/?indication=lung&mode=federated_analytics&per_page=100"
    )
    assert status == 200
    assert list(frame["id"]) == [d["id"] for d in body["results"]]
    assert list(frame["title"]) == [d["title"] for d in body["results"]]
    assert set(live_network.lung_dataset_ids) <= set(frame["id"])
    assert "indication" in frame.attrs["facets"]


def test_it_lists_the_entitlements_with_dataset_id_and_title(client, live_network):
    frame = client.entitlements()
    fa = frame[frame["access_mode"] == "federated_analytics"]
    assert set(live_network.lung_dataset_ids) <= set(fa["dataset_id"])
    titles = client.datasets().set_index("id")["title"]
    for row in fa.itertuples():
        assert row.dataset_title == titles[row.dataset_id]
        assert row.status == "active"


def test_a_count_by_sex_equals_the_web_uis(client, live_network, web):
    handle = client.analyses.count(
        live_network.lung_dataset_ids, Cohort(LUNG), stratify_by=["sex"], title="client count"
    )
    counts = handle.wait(progress=False).result()
    assert handle.status == "completed"
    web_counts = web_csv(live_network, web, handle.id).set_index("sex")
    assert web_counts.loc["total", "count"] == counts.attrs["total"]
    for row in counts.itertuples():
        assert web_counts.loc[row.sex, "count"] == row.count
    assert counts.attrs["total"] == counts["count"].sum() > 0
    assert len(counts.attrs["nodes"]) == 2


def test_a_kaplan_meier_by_sex_equals_the_web_uis_and_plots(client, live_network, web):
    handle = client.analyses.kaplan_meier(
        live_network.lung_dataset_ids,
        Cohort(LUNG),
        stratify_by="sex",
        time_unit_days=30,
        max_time_units=60,
    )
    km = handle.wait(progress=True).result()
    assert set(km["stratum"]) == {"female", "male"}
    expected = web_csv(live_network, web, handle.id)
    columns = [c for c in expected.columns if c != "stratum"]
    pd.testing.assert_frame_equal(
        km[["stratum", *columns]].reset_index(drop=True),
        expected.reset_index(drop=True),
        check_dtype=False,
    )
    by_stratum = km.groupby("stratum")["survival"]
    assert by_stratum.apply(lambda s: s.is_monotonic_decreasing).all()
    assert (km["ci_low"] <= km["survival"]).all() and (km["survival"] <= km["ci_high"]).all()
    assert km.attrs["log_rank"]["df"] == 1

    figure = handle.plot(title="Overall survival by sex")
    main, risk = figure.axes
    assert len(main.get_lines()) == 2 and len(main.collections) == 2  # curves and CI bands
    assert [t.get_text() for t in risk.get_yticklabels()] == ["female", "male"]
    assert len(risk.texts) > 0  # numbers at risk


def test_a_logistic_regression_equals_the_web_uis_and_plots_a_forest(client, live_network, web):
    handle = client.analyses.logistic_regression(
        live_network.lung_dataset_ids,
        Cohort(LUNG),
        outcome_days=365,
        covariates=["age_at_index", "sex_male"],
    )
    coefficients = handle.wait(progress=False).result()
    assert list(coefficients.index) == ["intercept", "age_at_index", "sex_male"]
    assert coefficients.attrs["converged"] is True
    expected = web_csv(live_network, web, handle.id).set_index("term")
    pd.testing.assert_frame_equal(
        coefficients[list(expected.columns)], expected, check_dtype=False, check_names=False
    )
    status, body = live_network.api("GET", f"analyses/{handle.id}/")
    assert status == 200 and body["result"]["n"] == coefficients.attrs["n"]

    figure = handle.plot()
    (axis,) = figure.axes
    assert axis.get_xscale() == "log"
    assert {t.get_text() for t in axis.get_yticklabels()} == {"age_at_index", "sex_male"}


def test_a_characterisation_of_a_breast_cohort_lists_each_section(client):
    entitled = client.entitlements().query("access_mode == 'federated_analytics'")
    breast = client.datasets(indication="breast")
    datasets = breast[breast["id"].isin(entitled["dataset_id"])]
    assert len(datasets) >= 1
    table = client.analyses.characterisation(datasets, Cohort([BREAST])).result()
    assert set(table["section"]) >= {"by_sex", "by_age_group", "by_follow_up"}
    assert table.attrs["person_count"]["count"] > 0


def test_a_circe_cohort_count_carries_its_attrition(client, live_network):
    counts = client.analyses.count(
        live_network.lung_dataset_ids, Cohort.from_circe(CIRCE_LUNG_AGED_50)
    ).result()
    attrition = counts.attrs["attrition"]
    assert attrition["step"].tolist() == [0, 1]
    assert attrition["count"].iloc[0] >= attrition["count"].iloc[1] > 0


def test_a_release_a_node_refuses_raises_refused_by_policy(client, live_network):
    """One node alone after the pooled lung analyses: its ledger sees a small difference to what
    it released before and its policy refuses (differencing)."""
    client.analyses.count(live_network.lung_dataset_ids, Cohort(LUNG), stratify_by=["sex"]).wait(
        progress=False
    )
    handle = client.analyses.characterisation(live_network.lung_dataset_ids[:1], Cohort(LUNG))
    with pytest.raises(RefusedByPolicyError) as caught:
        handle.result()
    assert "rejected by policy" in caught.value.message
    assert handle.runs["status"].tolist() == ["rejected_by_policy"]


def test_an_analysis_on_a_dataset_without_entitlement_raises_not_entitled(client, live_network):
    with pytest.raises(NotEntitledError) as caught:
        client.analyses.count(live_network.unentitled_lung_dataset_ids[:1], Cohort(LUNG))
    assert caught.value.status == 403
    assert "no active entitlement" in caught.value.message


def test_invalid_parameters_raise_a_validation_error_naming_the_field(client, live_network):
    with pytest.raises(ValidationError) as caught:
        client.analyses.kaplan_meier(live_network.lung_dataset_ids, Cohort(LUNG), time_unit_days=0)
    assert caught.value.status == 400
    assert caught.value.fields


def test_the_readmes_python_example_runs(live_network, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(from optima_client.*?)```", readme, re.S).group(1)
    assert len([line for line in example.splitlines() if line.strip()]) == 5
    monkeypatch.setenv("OPTIMA_URL", live_network.url)
    monkeypatch.setenv("OPTIMA_TOKEN", live_network.token)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["km"].status == "completed"
    assert set(namespace["km"].result()["stratum"]) == {"female", "male"}
