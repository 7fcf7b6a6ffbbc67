"""The federated-learning form: its fields become ``FederatedLearningParams``."""

from __future__ import annotations

from django import forms

from accounts import limits
from optima_node import schemas as contract

COVARIATES = [
    ("age_at_index", "Age at index"),
    ("sex_male", "Sex (male)"),
    ("index_year", "Index year"),
    ("stage", "Stage (where the site records it)"),
]


class DatasetChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        title = obj.current_version.title if obj.current_version_id else obj.title
        return f"{title} — {obj.publisher}"


class FlJobForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, label="Title")
    datasets = DatasetChoice(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Datasets (one per site)"
    )
    template = forms.ChoiceField(
        choices=[
            ("logistic_regression", "Logistic regression"),
            ("mlp", "Small MLP (one hidden layer)"),
        ],
        label="Model template",
    )
    condition_concept_ids = forms.CharField(
        initial="443392",
        label="Cohort: condition concept ids",
        **limits.chars(limits.TEXT_LONG),
        help_text="Comma-separated OMOP concept ids; descendants are included.",
    )
    outcome_days = forms.IntegerField(
        initial=1825,
        label="Outcome: death within (days)",
        **limits.between(1, contract.OUTCOME_DAYS_MAX),
    )
    covariates = forms.MultipleChoiceField(
        choices=COVARIATES,
        initial=[c for c, _ in COVARIATES],
        widget=forms.CheckboxSelectMultiple,
        label="Covariates",
    )
    rounds = forms.IntegerField(min_value=1, max_value=100, initial=5, label="Rounds")
    local_epochs = forms.IntegerField(min_value=1, max_value=100, initial=5, label="Local epochs")
    learning_rate = forms.FloatField(
        min_value=0.0001, max_value=10, initial=0.5, label="Learning rate"
    )
    min_sites = forms.IntegerField(
        min_value=1, max_value=50, initial=2, label="Minimum number of sites"
    )
    hidden_units = forms.IntegerField(
        min_value=2, max_value=64, initial=8, label="Hidden units (MLP only)"
    )

    def __init__(self, *args, datasets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["datasets"].queryset = datasets

    def clean_condition_concept_ids(self) -> list[int]:
        raw = self.cleaned_data["condition_concept_ids"]
        try:
            ids = [int(part) for part in raw.replace(" ", "").split(",") if part]
        except ValueError as exc:
            raise forms.ValidationError(
                "Concept ids are whole numbers separated by commas."
            ) from exc
        if not ids:
            raise forms.ValidationError("Give at least one concept id.")
        limits.check_concept_ids(ids)
        return ids

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "cohort": {"condition_concept_ids": data["condition_concept_ids"]},
            "outcome": {"kind": "death_within_days", "days": data["outcome_days"]},
            "covariates": list(data["covariates"]),
            "template": data["template"],
            "hidden_units": data["hidden_units"],
            "rounds": data["rounds"],
            "local_epochs": data["local_epochs"],
            "learning_rate": data["learning_rate"],
            "min_sites": data["min_sites"],
        }


class ReleaseForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Registry name")


class DeclineForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Reason",
        **limits.chars(limits.TEXT_MEDIUM),
    )
