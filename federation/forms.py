"""HTML forms: a structured analysis form (it builds the params the JSON schema checks) and nodes."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts import limits, parsers
from optima_node import schemas as contract

from .analysis_types import get_kind, node_kinds

CANCER_PRESETS = {
    "lung": ("Lung cancer", [4115276]),
    "breast": ("Breast cancer", [4112853]),
    "prostate": ("Prostate cancer", [4163261]),
}


def _type_choices() -> list[tuple[str, str]]:
    return [(f"{k.type}:{k.version}", f"{k.label} (v{k.version})") for k in node_kinds()]


CIRCE_CHARS_MAX = 1_000_000


class AnalysisForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, label="Title")
    analysis = forms.ChoiceField(label="Analysis", choices=_type_choices)
    datasets = forms.ModelMultipleChoiceField(
        label="Datasets",
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        help_text="Datasets served by an approved node. You need an entitlement for federated "
        "analytics on each.",
    )
    min_nodes = forms.IntegerField(
        label="Minimum number of nodes",
        **limits.between(1, limits.NODES_MAX),
        required=False,
        help_text="Leave empty to require every node; with fewer the result is labelled partial.",
    )
    deadline_hours = forms.IntegerField(
        label="Deadline per node (hours)",
        min_value=1,
        max_value=24 * 14,
        initial=24,
        required=False,
        help_text="A node that has not answered by then is left out (its run expires).",
    )
    cancer = forms.ChoiceField(
        label="Cancer",
        required=False,
        choices=[("", "Other (enter concept ids)")]
        + [(k, label) for k, (label, _) in CANCER_PRESETS.items()],
    )
    condition_concept_ids = forms.CharField(
        label="Condition concept ids",
        required=False,
        **limits.chars(limits.TEXT_LONG),
        help_text="OMOP concept ids, comma-separated (used when no cancer is chosen).",
    )
    include_descendants = forms.BooleanField(
        label="Include descendant concepts", required=False, initial=True
    )
    age_min = forms.IntegerField(
        label="Minimum age at index", required=False, **limits.between(0, limits.AGE_MAX)
    )
    age_max = forms.IntegerField(
        label="Maximum age at index", required=False, **limits.between(0, limits.AGE_MAX)
    )
    sex = forms.ChoiceField(
        label="Sex",
        required=False,
        choices=[("", "Any"), ("male", "Male"), ("female", "Female")],
    )
    index_date_min = forms.DateField(
        label="Index date from",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[limits.check_date],
    )
    index_date_max = forms.DateField(
        label="Index date until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[limits.check_date],
    )
    stratify_by = forms.MultipleChoiceField(
        label="Stratify counts by",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[("sex", "Sex"), ("age_group", "Age group"), ("index_year", "Index year")],
        help_text="Cohort count only.",
    )
    km_stratify_by = forms.ChoiceField(
        label="Survival curves by",
        required=False,
        choices=[("none", "No strata"), ("sex", "Sex"), ("age_group", "Age group")],
        help_text="Kaplan–Meier only.",
    )
    time_unit_days = forms.IntegerField(
        label="Time unit (days)",
        required=False,
        initial=30,
        **limits.between(1, contract.TIME_UNIT_DAYS_MAX),
    )
    max_time_units = forms.IntegerField(
        label="Follow-up horizon (time units)",
        required=False,
        initial=120,
        **limits.between(1, contract.MAX_TIME_UNITS_MAX),
    )
    outcome_days = forms.IntegerField(
        label="Outcome: death within (days)",
        required=False,
        initial=365,
        **limits.between(1, contract.OUTCOME_DAYS_MAX),
        help_text="Logistic regression only.",
    )
    covariates = forms.MultipleChoiceField(
        label="Covariates",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[
            ("age_at_index", "Age at index"),
            ("sex_male", "Male sex"),
            ("index_year", "Index year"),
        ],
        help_text="Logistic regression only; an intercept is always included.",
    )
    circe_json = forms.CharField(
        label="Cohort from ATLAS (JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=(
            "Paste a cohort definition exported from ATLAS (its JSON expression) to use it instead "
            "of the cohort fields above; docs/cohorts.md lists what the nodes run."
        ),
        **limits.chars(CIRCE_CHARS_MAX),
    )
    circe_file = forms.FileField(
        label="… or upload the ATLAS JSON file",
        required=False,
        help_text="A .json file of at most 1 MB.",
    )
    params_json = forms.CharField(
        label="Parameters as JSON (advanced)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="When given, these parameters are used instead of the fields above.",
        **limits.chars(limits.TEXT_LONG),
    )

    def __init__(self, *args, datasets, **kwargs):
        super().__init__(*args, **kwargs)
        # federation.selectors.analysable_datasets: published, entitled, served by a node.
        self.fields["datasets"].queryset = datasets
        # The published title: a published dataset's working copy may hold an unreviewed edit.
        self.fields["datasets"].label_from_instance = lambda d: (
            f"{d.current_version.title if d.current_version_id else d.title} ({d.publisher})"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        choice = data.get("analysis") or ""
        analysis_type, _, version = choice.partition(":")
        data["type"], data["version"] = analysis_type, int(version or 1)
        if data.get("params_json"):
            try:
                data["params"] = parsers.loads(data["params_json"])
            except ValueError as exc:
                too_deep = str(exc) == parsers.TOO_DEEP
                self.add_error(
                    "params_json", parsers.TOO_DEEP if too_deep else "This is not valid JSON."
                )
            return data
        kind = get_kind(analysis_type, data["version"])
        if kind is not None and not kind.uses_cohort:
            data["params"] = kind.form_params(data)  # the cohort fields do not apply
            return data
        circe = self._circe_expression(data)
        if circe is not None:
            params: dict[str, Any] = {"cohort": {"circe": circe}}
            if kind is not None:
                params.update(kind.form_params(data))
            data["params"] = params
            return data
        if "circe_json" in self.errors or "circe_file" in self.errors:
            return data
        if data.get("cancer"):
            concepts = CANCER_PRESETS[data["cancer"]][1]
        else:
            try:
                concepts = [
                    int(p)
                    for p in (data.get("condition_concept_ids") or "").split(",")
                    if p.strip()
                ]
            except ValueError:
                self.add_error("condition_concept_ids", "Enter numbers separated by commas.")
                return data
            if not concepts:
                self.add_error("condition_concept_ids", "Choose a cancer or enter concept ids.")
                return data
            try:
                limits.check_concept_ids(concepts)
            except forms.ValidationError as exc:
                self.add_error("condition_concept_ids", exc)
                return data
        cohort: dict[str, Any] = {
            "condition_concept_ids": concepts,
            "include_descendants": bool(data.get("include_descendants")),
        }
        for key in ("age_min", "age_max", "sex"):
            if data.get(key) not in (None, ""):
                cohort[key] = data[key]
        for key in ("index_date_min", "index_date_max"):
            if data.get(key):
                cohort[key] = data[key].isoformat()
        params = {"cohort": cohort}
        if kind is not None:
            params.update(kind.form_params(data))
        data["params"] = params
        return data

    def _circe_expression(self, data: dict[str, Any]) -> Any:
        """The pasted or uploaded ATLAS definition (its ``expression`` when the whole cohort
        definition was exported), or None when neither was given."""
        upload = data.get("circe_file")
        text: str | bytes = data.get("circe_json") or ""
        field = "circe_json"
        if upload is not None:
            field = "circe_file"
            if upload.size > CIRCE_CHARS_MAX:
                self.add_error(field, "The file is larger than 1 MB.")
                return None
            text = upload.read()
        if not text:
            return None
        try:
            value = parsers.loads(text)
        except ValueError as exc:
            self.add_error(
                field,
                parsers.TOO_DEEP if str(exc) == parsers.TOO_DEEP else "This is not valid JSON.",
            )
            return None
        if isinstance(value, dict) and isinstance(value.get("expression"), dict | str):
            value = value["expression"]
            if isinstance(value, str):  # WebAPI stores the expression as a JSON string
                try:
                    value = parsers.loads(value)
                except ValueError:
                    self.add_error(field, "The definition's expression is not valid JSON.")
                    return None
        if not isinstance(value, dict):
            self.add_error(field, "An ATLAS cohort definition is a JSON object.")
            return None
        return value


class NodeRegisterForm(forms.Form):
    organisation = forms.ModelChoiceField(label="Organisation", queryset=None)
    name = forms.CharField(label="Node name", max_length=100)
    description = forms.CharField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        **limits.chars(limits.TEXT_MEDIUM),
    )

    def __init__(self, *args, organisations=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


class NodeDatasetsForm(forms.Form):
    datasets = forms.ModelMultipleChoiceField(
        label="Datasets this node serves",
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, datasets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["datasets"].queryset = datasets


class ServeFromNodeForm(forms.Form):
    node = forms.ModelChoiceField(
        label="Serve from node",
        queryset=None,
        help_text="One of your hospital's approved nodes. Its site admin confirms before "
        "researchers can analyse the dataset.",
    )

    def __init__(self, *args, nodes=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].queryset = nodes


class DeclineForm(forms.Form):
    reason = forms.CharField(label="Reason (optional)", required=False, max_length=200)
