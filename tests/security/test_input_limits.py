"""Probe finding 15, missing limits: a 9 MB feedback description and access-request text were
stored, ``requested_end_date 9999-12-31`` and concept id 2**70 accepted.

Every free-text and numeric input now has a documented bound (accounts/limits.py, the node's
optima_node/schemas.py; the table in docs/security.md "Input limits"). The attacks below must
answer 400 with a message naming the limit and store nothing; the walkers at the end fail the
build when a new API or form field arrives without a bound.
"""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from django import forms
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from accounts import limits
from accounts.models import Role
from feedback.models import FeedbackItem
from governance.models import AccessRequest
from optima_node import schemas
from tests.factories import make_member

pytestmark = pytest.mark.django_db

NINE_MB = "x" * (9 * 1024 * 1024)
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/catalogue/"}


def _fields(response) -> dict[str, list[str]]:
    """Field messages of the API's one error shape (accounts/api_errors.py)."""
    return response.json()["error"]["fields"]


@pytest.fixture
def clinician_a(hospital_a):
    return make_member(hospital_a, Role.CLINICIAN, username="clinician_a")


# --- feedback ---------------------------------------------------------------------------------


def test_a_9_mb_feedback_description_is_refused_by_the_api(api_as, clinician_a):
    response = api_as(clinician_a).post(
        "/api/feedback/items/",
        {"category": "bug", "component": "catalogue", "title": "Big", "description": NINE_MB},
        format="json",
    )
    assert response.status_code == 400
    assert "at most 20,000 characters" in str(_fields(response)["description"])
    assert not FeedbackItem.objects.exists()


def test_a_9_mb_feedback_description_is_refused_by_the_form(client_as, clinician_a):
    response = client_as(clinician_a).post(
        "/feedback/widget/",
        {
            "category": "usability",
            "component": "catalogue",
            "persona": "clinician",
            "title": "Big",
            "description": NINE_MB,
        },
        **HTMX,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most 20,000 characters" in html
    assert 'maxlength="20000"' in html  # the browser stops typing there
    assert not FeedbackItem.objects.exists()


def test_a_9_mb_comment_is_refused(api_as, clinician_a, hospital_a):
    from tests.feedback.factories import FeedbackItemFactory

    item = FeedbackItemFactory(site=hospital_a, author=clinician_a)
    response = api_as(clinician_a).post(
        f"/api/feedback/items/{item.pk}/comments/", {"body": NINE_MB}, format="json"
    )
    assert response.status_code == 400
    assert not item.comments.exists()


# --- access requests --------------------------------------------------------------------------


@pytest.fixture
def draft(researcher, hospital_a):
    from governance import services
    from tests.governance.factories import published_dataset

    dataset = published_dataset(hospital_a)
    return services.access_request_create(
        actor=researcher,
        project_title="Survival",
        datasets=[(dataset, "federated_analytics", False)],
    )


def test_a_9_mb_research_question_is_refused_by_the_api(api_as, researcher):
    response = api_as(researcher).post(
        "/api/access-requests/",
        {"project_title": "Big", "research_question": NINE_MB},
        format="json",
    )
    assert response.status_code == 400
    assert "at most 20,000 characters" in str(_fields(response)["research_question"])
    assert not AccessRequest.objects.exists()


def test_a_9_mb_lay_summary_is_refused_by_the_api_on_edit(api_as, researcher, draft):
    response = api_as(researcher).patch(
        f"/api/access-requests/{draft.pk}/", {"lay_summary": NINE_MB}, format="json"
    )
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.lay_summary == ""


def _edit_form(draft, **fields):
    item = draft.items.get()
    return {
        "project_title": draft.project_title,
        f"mode_{item.dataset_id}": "federated_analytics",
        **fields,
    }


def test_a_9_mb_research_question_is_refused_by_the_form(client_as, researcher, draft):
    response = client_as(researcher).post(
        f"/governance/requests/{draft.pk}/edit/", _edit_form(draft, research_question=NINE_MB)
    )
    assert response.status_code == 400
    assert "at most 20,000 characters" in response.content.decode()
    draft.refresh_from_db()
    assert draft.research_question == ""


def test_the_year_9999_is_refused_as_requested_end_date(api_as, client_as, researcher, draft):
    response = api_as(researcher).patch(
        f"/api/access-requests/{draft.pk}/", {"requested_end_date": "9999-12-31"}, format="json"
    )
    assert response.status_code == 400
    assert "at most 10 years" in str(_fields(response)["requested_end_date"])
    response = client_as(researcher).post(
        f"/governance/requests/{draft.pk}/edit/",
        _edit_form(draft, requested_end_date="9999-12-31"),
    )
    assert response.status_code == 400
    assert "at most 10 years" in response.content.decode()
    draft.refresh_from_db()
    assert draft.requested_end_date is None


def test_ten_years_ahead_is_still_accepted(api_as, researcher, draft):
    end = timezone.localdate() + timedelta(days=365 * 9)
    response = api_as(researcher).patch(
        f"/api/access-requests/{draft.pk}/", {"requested_end_date": end.isoformat()}, format="json"
    )
    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert draft.requested_end_date == end


def test_a_draft_stored_before_the_limit_cannot_be_submitted_with_it(researcher, hospital_a):
    from governance import services
    from tests.governance.factories import complete_draft, published_dataset

    far = complete_draft(researcher, [published_dataset(hospital_a)], end_in_days=365 * 50)
    assert "at most 10 years" in str(services.submission_errors(far)["requested_end_date"])


def test_a_9_mb_reason_is_refused_by_the_html_views(client_as, researcher, draft):
    response = client_as(researcher).post(
        f"/governance/requests/{draft.pk}/withdraw/", {"reason": NINE_MB}
    )
    assert response.status_code == 400
    assert "at most 2,000 characters" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_more_datasets_than_the_limit_are_refused_before_any_lookup(
    api_as, platform_admin, django_assert_max_num_queries
):
    body = {"title": "Big", "datasets": list(range(1, limits.LIST_LONG + 2))}
    with django_assert_max_num_queries(10):  # not one query per id
        response = api_as(platform_admin).post("/api/agreements/", body, format="json")
    assert response.status_code == 400
    assert "at most 1,000 items" in str(_fields(response)["datasets"])


@pytest.mark.parametrize(
    "expires_at, message",
    [
        ("9999-12-31T23:59:59Z", "out of range"),  # DRF: beyond what a datetime can hold
        ("2300-01-01T00:00:00Z", "at most 10 years"),
    ],
)
def test_an_api_token_cannot_live_for_centuries(api_as, researcher, expires_at, message):
    from accounts.models import ApiToken

    response = api_as(researcher).post(
        "/api/tokens/", {"name": "forever", "expires_at": expires_at}, format="json"
    )
    assert response.status_code == 400
    assert message in str(_fields(response)["expires_at"])
    assert not ApiToken.objects.filter(name="forever").exists()


# --- analyses ---------------------------------------------------------------------------------


def _analysis(concept_ids, **cohort):
    return {
        "type": "cohort_count",
        "version": 1,
        "datasets": [],  # filled in by the test
        "params": {"cohort": {"condition_concept_ids": concept_ids, **cohort}},
    }


@pytest.mark.parametrize(
    "body, where",
    [
        (_analysis([2**70]), "condition_concept_ids"),
        (_analysis([0]), "condition_concept_ids"),
        (_analysis([-5]), "condition_concept_ids"),
        (_analysis([443392], age_max=10**6), "age_max"),
        (_analysis([443392], index_date_max="9999-12-31"), "index_date_max"),
        ({**_analysis([443392]), "min_nodes": 2**70}, "min_nodes"),
        ({**_analysis([443392]), "version": 2**40}, "version"),
    ],
)
def test_out_of_range_analysis_parameters_answer_400(api_as, researcher, hospital_a, body, where):
    from federation.models import Analysis
    from tests.federation.factories import make_dataset

    body = {**body, "datasets": [make_dataset(hospital_a).pk]}
    response = api_as(researcher).post("/api/analyses/", body, format="json")
    assert response.status_code == 400, response.content
    assert where in str(_fields(response))
    assert not Analysis.objects.exists()


def test_the_node_schema_refuses_a_concept_id_beyond_32_bits():
    with pytest.raises(PydanticValidationError, match="less than or equal to 2147483647"):
        schemas.CohortSpec(condition_concept_ids=[2**70])
    with pytest.raises(PydanticValidationError):
        schemas.CohortSpec(condition_concept_ids=[2**31])
    assert schemas.CohortSpec(condition_concept_ids=[2**31 - 1]).condition_concept_ids


def test_the_analysis_form_names_the_concept_id_limit():
    from federation.forms import AnalysisForm

    form = AnalysisForm(
        {"analysis": "cohort_count:1", "condition_concept_ids": f"443392, {2**70}"}, datasets=None
    )
    assert not form.is_valid()
    assert "2,147,483,647" in str(form.errors["condition_concept_ids"])


def test_the_portal_and_the_node_share_the_parameter_limits():
    params = schemas.KaplanMeierParams.model_json_schema()
    cohort = params["$defs"]["CohortSpec"]["properties"]
    assert cohort["condition_concept_ids"]["items"]["maximum"] == limits.CONCEPT_ID_MAX
    assert cohort["age_max"]["anyOf"][0]["maximum"] == limits.AGE_MAX


# --- clinical decision support ----------------------------------------------------------------


@pytest.fixture
def pathways(db):
    from cds import services

    services.pathway_sync()


@pytest.mark.parametrize(
    "pathway, inputs, field",
    [
        ("prostate-eau", {"psa": -1, "ct": "cT1c"}, "inputs.psa"),
        ("prostate-eau", {"psa": 10**9, "ct": "cT1c"}, "inputs.psa"),
        ("prostate-eau", {"psa": 8, "ct": "cT1c", "gleason": "3+4" * 10**6}, "At most 100"),
        ("breast-st-gallen", {"er_pct": 90, "pr_pct": 50, "ki67_pct": 101}, "inputs.ki67_pct"),
        ("breast-st-gallen", {"er_pct": -0.5, "pr_pct": 50}, "inputs.er_pct"),
    ],
)
def test_cds_numbers_out_of_range_answer_400(api_as, clinician_a, pathways, pathway, inputs, field):
    from cds.models import Evaluation

    response = api_as(clinician_a).post(
        "/api/cds/evaluate/", {"pathway": pathway, "inputs": inputs}, format="json"
    )
    assert response.status_code == 400
    assert field in str(_fields(response))
    assert not Evaluation.objects.exists()


def test_every_cds_number_input_declares_its_range():
    from cds import engine

    with pytest.raises(ValueError, match="needs 'minimum' and 'maximum'"):
        engine.schema.InputSpec(type="number", label="PSA", minimum=0)


def test_a_9_mb_cds_hooks_comment_is_refused(api_as, clinician_a, pathways):
    import uuid

    response = api_as(clinician_a).post(
        "/cds-services/prostate-eau/feedback",
        {
            "feedback": [
                {
                    "card": str(uuid.uuid4()),
                    "outcome": "overridden",
                    "overrideReason": {"userComment": NINE_MB},
                    "outcomeTimestamp": "2026-01-01T00:00:00Z",
                }
            ]
        },
        format="json",
    )
    assert response.status_code == 400
    assert "2,000" in response.content.decode()


# --- node agent -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["inf", "nan", "1e300", "-1"])
def test_the_node_refuses_an_absurd_poll_interval(interval):
    from optima_node.config import ConfigError, load_config

    env = {
        "PORTAL_URL": "https://portal.example",
        "NODE_TOKEN": "t",
        "OMOP_DATABASE_URL": "sqlite:///x.db",
        "POLL_INTERVAL": interval,
    }
    with pytest.raises(ConfigError, match="at most 3600 seconds"):
        load_config(None, env)


def test_a_heartbeat_is_bounded_to_the_portals_columns():
    policy = {
        "require_approval": False,
        "review_before_release": False,
        "min_cell_count": 5,
        "allowed_types": ["cohort_count"],
        "federated_learning": False,
    }
    beat = {
        "agent_version": "0.1",
        "capabilities": [],
        "cdm_version": "5.4",
        "vocabulary_version": "v5",
        "dialect": "sqlite",
        "person_count": 100,
        "policy": policy,
    }
    assert schemas.Heartbeat.model_validate(beat)
    for field, value in (("agent_version", "x" * 41), ("person_count", 2**70)):
        with pytest.raises(PydanticValidationError):
            schemas.Heartbeat.model_validate({**beat, field: value})


# --- every API input and every form field carries a bound ------------------------------------

# Fields the walkers skip on purpose, each with its reason. Keep this list short.
ALLOWED_UNBOUNDED: dict[str, str] = {}


def _request_serializers() -> list[tuple[str, serializers.BaseSerializer]]:
    """The request body serializer of every write operation, as the OpenAPI generator sees it."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import spectacular_settings

    generator = SchemaGenerator()
    generator._initialise_endpoints()
    found = []
    for path, path_regex, method, view in generator._get_paths_and_endpoints():
        if method not in ("POST", "PUT", "PATCH"):
            continue
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, None)
        schema = view.schema
        schema.registry = generator.registry
        schema.path, schema.path_regex, schema.path_prefix, schema.method = (
            path,
            path_regex,
            "",
            method,
        )
        request = schema.get_request_serializer()
        if isinstance(request, dict):  # {content type: serializer}
            request = next(iter(request.values()))
        if inspect.isclass(request) and issubclass(request, serializers.BaseSerializer):
            request = request()
        if isinstance(request, serializers.BaseSerializer):
            found.append((f"{method} {path}", request))
        # Node API bodies are the agent's pydantic models: bounded in optima_node/schemas.py
        # and tested above and in tests/security/test_node_api.py.
    return found


def _unbounded(field, where: str) -> list[str]:
    if where in ALLOWED_UNBOUNDED or getattr(field, "read_only", False):
        return []
    problems: list[str] = []
    if isinstance(field, serializers.ListSerializer):
        if field.max_length is None:
            problems.append(f"{where}: a list without max_length")
        return problems + _unbounded(field.child, f"{where}[]")
    if isinstance(field, serializers.Serializer):
        for name, child in field.fields.items():
            problems += _unbounded(child, f"{type(field).__name__}.{name}")
        return problems
    if isinstance(field, serializers.ListField):
        if field.max_length is None:
            problems.append(f"{where}: a list without max_length")
        return problems + _unbounded(field.child, f"{where}[]")
    if isinstance(field, serializers.ManyRelatedField):
        if getattr(field, "max_length", None) is None:
            problems.append(f"{where}: a list of ids without max_length (limits.many_related)")
        return problems
    if isinstance(field, serializers.DictField):
        # Free-form objects (CDS inputs, FHIR context) are checked by what consumes them; a
        # typed child is still walked.
        return _unbounded(field.child, f"{where}{{}}")
    if isinstance(field, serializers.CharField) and field.max_length is None:
        problems.append(f"{where}: text without max_length")
    if isinstance(
        field, serializers.IntegerField | serializers.FloatField | serializers.DecimalField
    ) and (field.min_value is None or field.max_value is None):
        problems.append(f"{where}: a number without min_value and max_value")
    return problems


REQUESTS = _request_serializers()


def test_the_walker_sees_the_write_operations():
    operations = {operation for operation, _ in REQUESTS}
    assert {"POST /api/feedback/items/", "POST /api/access-requests/", "POST /api/analyses/"} <= (
        operations
    )
    assert len(operations) > 30


@pytest.mark.parametrize(
    "operation, serializer", REQUESTS, ids=[operation for operation, _ in REQUESTS]
)
def test_every_api_input_is_bounded(operation, serializer):
    assert _unbounded(serializer, type(serializer).__name__) == []


def _form_classes() -> list[type[forms.BaseForm]]:
    import importlib

    modules = [
        "accounts.forms",
        "accounts.otp",
        "catalogue.forms",
        "cds.views",
        "federation.forms",
        "federation.flare.forms",
        "feedback.forms",
        "governance.forms",
    ]
    found = []
    for name in modules:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, forms.BaseForm)
                and value.__module__ == name
            ):
                found.append(value)
    return found


def _unbounded_form_fields(form_fields: dict, owner: str) -> list[str]:
    problems = []
    for name, field in form_fields.items():
        where = f"{owner}.{name}"
        if where in ALLOWED_UNBOUNDED or field.disabled:
            continue
        if isinstance(field, forms.CharField) and field.max_length is None:
            problems.append(f"{where}: text without max_length")
        if isinstance(field, forms.IntegerField | forms.FloatField | forms.DecimalField) and (
            field.min_value is None or field.max_value is None
        ):
            problems.append(f"{where}: a number without min_value and max_value")
    return problems


FORMS = _form_classes()


@pytest.mark.parametrize("form_class", FORMS, ids=[f.__name__ for f in FORMS])
def test_every_form_field_is_bounded(form_class):
    assert _unbounded_form_fields(form_class.base_fields, form_class.__name__) == []


def test_every_cds_pathway_form_is_bounded():
    from cds import engine
    from cds.views import inputs_form_class

    for slug, pathway in engine.load_builtin_pathways().items():
        form = inputs_form_class(pathway)
        assert _unbounded_form_fields(form.base_fields, slug) == []


def test_the_openapi_schema_carries_the_limits(api_as, researcher):
    schema = api_as(researcher).get("/api/schema/?format=json").json()["components"]["schemas"]
    description = schema["FeedbackCreateRequest"]["properties"]["description"]
    assert description["maxLength"] == limits.TEXT_LONG
    minimum = schema["AnalysisCreateRequest"]["properties"]["min_nodes"]
    assert minimum["maximum"] == limits.NODES_MAX
