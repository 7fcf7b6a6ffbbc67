"""The steward's dataset form and the curator's review forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q

from accounts import extensions, limits
from accounts.models import Organisation

from . import metadata
from .models import (
    AccessMode,
    CancerIndication,
    CodingSystem,
    DataCategory,
    Dataset,
    DistributionKind,
    HealthCategory,
    Legislation,
)


class IndicationChoiceField(forms.ModelMultipleChoiceField):
    """Checkboxes labelled with their place in the hierarchy ("Lung cancer › NSCLC")."""

    def label_from_instance(self, obj: CancerIndication) -> str:
        names, node, seen = [obj.name], obj.parent, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            names.insert(0, node.name)
            node = node.parent
        return " › ".join(names[1:] if len(names) > 1 else names)


def _checkboxes(choices, **kwargs) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=choices, widget=forms.CheckboxSelectMultiple, required=False, **kwargs
    )


# Widgets shown as a group of boxes: a link to the field goes to its first box.
CHOICE_GROUPS = ("checkboxselectmultiple", "radioselect")


class DatasetForm(forms.ModelForm):
    publisher = forms.ModelChoiceField(
        queryset=Organisation.objects.none(),
        help_text="The organisation providing the data; you must be one of its data stewards.",
    )
    keywords = forms.CharField(
        required=False,
        help_text="Separated by commas, e.g. immunotherapy, real-world evidence.",
        **limits.chars(limits.TEXT_MEDIUM),
    )
    indications = IndicationChoiceField(
        queryset=CancerIndication.objects.select_related("parent__parent"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Cancer indications",
    )
    data_categories = _checkboxes(DataCategory.choices)
    coding_systems = _checkboxes(CodingSystem.choices)
    access_modes = _checkboxes(AccessMode.choices, label="Access modes offered")
    applicable_legislation = _checkboxes(
        Legislation.choices,
        help_text="Empty: the EHDS regulation, under which the data is made available.",
    )
    health_categories = _checkboxes(
        HealthCategory.choices,
        help_text="EHDS categories (Art. 51). Empty: derived from the data categories above.",
    )
    node_ref = forms.ChoiceField(
        required=False,
        label="Node serving the federated OMOP database",
        help_text="One of the hospital's approved OPTIMA nodes. Its site administrator confirms "
        "the choice before researchers can analyse the dataset.",
    )
    documentation_url = forms.URLField(
        required=False, label="Documentation link", assume_scheme="https", max_length=limits.URL
    )

    class Meta:
        model = Dataset
        formfield_callback = limits.formfield_callback(
            description=limits.TEXT_LONG,
            population_coverage=limits.TEXT_MEDIUM,
            purposes=limits.TEXT_MEDIUM,
            terms_of_use_text=limits.TEXT_LONG,
            provenance=limits.TEXT_LONG,
            version_notes=limits.TEXT_MEDIUM,
            number_of_individuals=limits.between(0, limits.PERSONS_MAX),
            number_of_records=limits.between(0, limits.RECORDS_MAX),
            min_typical_age=limits.between(0, limits.AGE_MAX),
            max_typical_age=limits.between(0, limits.AGE_MAX),
            terms_min_cell_count=limits.between(1, 1000),
            temporal_start={"validators": [limits.check_date]},
            temporal_end={"validators": [limits.check_date]},
            last_refreshed={"validators": [limits.check_date]},
        )
        fields = [
            "publisher",
            "title",
            "description",
            "keywords",
            "contact_name",
            "contact_email",
            "indications",
            "data_categories",
            "population_coverage",
            "number_of_individuals",
            "number_of_records",
            "min_typical_age",
            "max_typical_age",
            "temporal_start",
            "temporal_end",
            "country",
            "update_frequency",
            "last_refreshed",
            "cdm_version",
            "vocabulary_version",
            "coding_systems",
            "access_rights",
            "access_modes",
            "legal_basis",
            "purposes",
            "applicable_legislation",
            "health_categories",
            "dataset_type",
            "provenance",
            "data_access_committee",
            "hdab",
            "terms_of_use_text",
            "terms_min_cell_count",
            "version_notes",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 5}),
            "population_coverage": forms.Textarea(attrs={"rows": 2}),
            "purposes": forms.Textarea(attrs={"rows": 2}),
            "provenance": forms.Textarea(attrs={"rows": 3}),
            "terms_of_use_text": forms.Textarea(attrs={"rows": 4}),
            "version_notes": forms.Textarea(attrs={"rows": 2}),
            "temporal_start": forms.DateInput(attrs={"type": "date"}),
            "temporal_end": forms.DateInput(attrs={"type": "date"}),
            "last_refreshed": forms.DateInput(attrs={"type": "date"}),
            "access_rights": forms.RadioSelect,
        }

    def __init__(self, *args, steward_orgs=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            # The same labels as the dataset page, the diff and the validation messages.
            field.label = metadata.LABELS.get(name, field.label)
        # Only committees the publisher designates (the model's clean checks it again on save).
        publisher_ids = (
            [self.instance.publisher_id] if self.instance.pk else list(steward_orgs or [])
        )
        self.fields["data_access_committee"].queryset = (
            Organisation.objects.filter(
                Q(pk__in=publisher_ids) | Q(committee_for__in=publisher_ids)
            )
            .distinct()
            .order_by("name")
        )
        self.fields["hdab"].queryset = Organisation.objects.order_by("name")
        self.fields[
            "hdab"
        ].help_text = (
            "Who grants access permits. Empty: the data access committee, else the publisher."
        )
        self.fields["provenance"].help_text = (
            "Where the data comes from and how the ETL transformed it. Empty: a description of "
            "the OMOP ETL is written for you."
        )
        self.fields["node_ref"].choices = self._node_choices(publisher_ids)
        if self.instance.pk:
            del self.fields["publisher"]
            self.initial["keywords"] = ", ".join(self.instance.keywords or [])
            for d in self.instance.distributions.all():
                if d.kind == DistributionKind.FEDERATED_OMOP:
                    self.initial.setdefault("node_ref", d.node_ref or "")
                elif d.kind == DistributionKind.DOCUMENTATION:
                    self.initial.setdefault("documentation_url", d.access_url)
        else:
            self.fields["publisher"].queryset = Organisation.objects.filter(
                pk__in=steward_orgs or []
            )
            if steward_orgs and len(steward_orgs) == 1:
                self.initial.setdefault("publisher", next(iter(steward_orgs)))
            self.initial.setdefault("applicable_legislation", [Legislation.EHDS.value])

    def _node_choices(self, publisher_ids: list[int]) -> list[tuple[str, str]]:
        """The publisher's approved nodes (the federation offers them), and an older free-text
        entry as it was, so that saving keeps it until the steward chooses a node."""
        offered = extensions.provided(extensions.DATASET_NODE_CHOICES)
        choices = list(offered(organisation_ids=publisher_ids)) if offered else []
        if self.instance.pk:
            known = {value for value, _ in choices}
            for d in self.instance.distributions.all():
                legacy = d.kind == DistributionKind.FEDERATED_OMOP and d.node_ref not in known
                if legacy and d.node_ref:
                    choices.append((d.node_ref, f"{d.node_ref} (not a registered node)"))
        return [("", "— No node yet —"), *choices]

    def clean_node_ref(self) -> str:
        """Only a node of the publisher (a steward of two hospitals is offered the nodes of both);
        an older free-text entry of the dataset is kept as it was."""
        ref = self.cleaned_data.get("node_ref") or ""
        publisher = (
            self.instance.publisher if self.instance.pk else self.cleaned_data.get("publisher")
        )
        kept = (
            {d.node_ref for d in self.instance.distributions.all()} if self.instance.pk else set()
        )
        if ref and publisher and ref not in kept and not ref.startswith(f"{publisher.slug}/"):
            raise forms.ValidationError(f"Choose one of the nodes of {publisher}.")
        return ref

    @property
    def required_to_submit(self) -> set[str]:
        """The fields a curator needs (saving a draft needs only a title): marked with a star.
        A distribution is given through the node field."""
        names = {"node_ref" if n == "distributions" else n for n in metadata.MANDATORY}
        return names | {n for n, f in self.fields.items() if f.required}

    def clean_keywords(self) -> list[str]:
        raw = self.cleaned_data.get("keywords") or ""
        seen: list[str] = []
        for word in (w.strip() for w in raw.split(",")):
            if word and word.lower() not in (s.lower() for s in seen):
                seen.append(word[:100])
        return seen

    def service_arguments(self) -> dict[str, Any]:
        """What the create/update services take: field data, indications, distributions."""
        cd = self.cleaned_data
        data = {
            name: cd[name]
            for name in self.Meta.fields
            if name not in ("publisher", "indications") and name in cd
        }
        existing = list(self.instance.distributions.all()) if self.instance.pk else []

        def kept(kind: str, **match) -> dict | None:
            # An unchanged distribution keeps its title and description.
            for d in existing:
                if d.kind == kind and all(getattr(d, k) == v for k, v in match.items()):
                    return {k: getattr(d, k) for k in metadata.DISTRIBUTION_FIELDS}
            return None

        distributions = []
        if cd.get("node_ref"):
            distributions.append(
                kept(DistributionKind.FEDERATED_OMOP, node_ref=cd["node_ref"])
                or {
                    "kind": DistributionKind.FEDERATED_OMOP,
                    "title": "Federated OMOP CDM database",
                    "description": "Queried in place through the hospital's OPTIMA node.",
                    "access_url": "",
                    "node_ref": cd["node_ref"],
                }
            )
        if cd.get("documentation_url"):
            distributions.append(
                kept(DistributionKind.DOCUMENTATION, access_url=cd["documentation_url"])
                or {
                    "kind": DistributionKind.DOCUMENTATION,
                    "title": "Documentation",
                    "description": "",
                    "access_url": cd["documentation_url"],
                    "node_ref": None,
                }
            )
        # Other distributions (e.g. imported ones) are kept as they are.
        distributions += [
            {k: getattr(d, k) for k in metadata.DISTRIBUTION_FIELDS}
            for d in existing
            if d.kind not in (DistributionKind.FEDERATED_OMOP, DistributionKind.DOCUMENTATION)
        ]
        return {
            "data": data,
            "indications": list(cd.get("indications") or []),
            "distributions": distributions,
        }


class RequestChangesForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the steward should change.",
        **limits.chars(limits.TEXT_MEDIUM),
    )


class PublishForm(forms.Form):
    notes = forms.CharField(
        required=False,
        label="Version notes",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown in the version history and exported as adms:versionNotes.",
        **limits.chars(limits.TEXT_MEDIUM),
    )


class RetireForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        **limits.chars(limits.TEXT_MEDIUM),
    )


class UpdateIntervalForm(forms.Form):
    update_interval_days = forms.IntegerField(
        label="Agreed update interval (days)",
        required=False,
        min_value=1,
        max_value=3660,
        help_text="How often the data provider refreshes the data; empty: no promise.",
    )
