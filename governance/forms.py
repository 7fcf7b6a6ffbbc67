from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from accounts import limits
from accounts.models import Organisation

from . import datasets as ds
from .models import AgreementKind, AgreementTemplate, AttachmentKind, PartyRole, Purpose

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
PARTY_ROWS = 4


class TemplateForm(forms.Form):
    kind = forms.ChoiceField(choices=AgreementKind.choices)
    title = forms.CharField(**limits.chars(limits.TEXT_SHORT))
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18}),
        **limits.chars(limits.TEXT_DOCUMENT),
        help_text="Markdown. Placeholders: {{ title }}, {{ reference }}, {{ parties }}, "
        "{{ datasets }}, {{ effective_date }}, {{ expiry_date }}, {{ purposes }}.",
    )
    notes = forms.CharField(
        label="Version notes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        **limits.chars(limits.TEXT_MEDIUM),
    )


class AgreementForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=AgreementTemplate.objects.none(),
        help_text="The newest version of each kind of template.",
    )
    title = forms.CharField(**limits.chars(limits.TEXT_SHORT))
    purposes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), **limits.chars(limits.TEXT_LONG)
    )
    effective_date = forms.DateField(widget=DATE, validators=[limits.check_date])
    expiry_date = forms.DateField(widget=DATE, validators=[limits.check_date])
    datasets = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty to cover every dataset of the data-providing parties.",
    )

    def __init__(self, *args, party_org_ids=None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        latest_ids = [
            t.pk
            for kind in AgreementKind.values
            if (t := AgreementTemplate.objects.filter(kind=kind).order_by("-version").first())
        ]
        self.fields["template"].queryset = AgreementTemplate.objects.filter(pk__in=latest_ids)
        if party_org_ids:
            # Only the parties' published datasets the user sees in the catalogue; on a new draft
            # datasets are chosen when editing.
            self.fields["datasets"].queryset = ds.visible_to(
                user, ids=ds.published().filter(publisher_id__in=party_org_ids).values("pk")
            )
            self.fields["datasets"].label_from_instance = ds.title
        else:
            del self.fields["datasets"]
        orgs = Organisation.objects.all()
        for n in range(1, PARTY_ROWS + 1):
            required = n <= 2
            self.fields[f"party_{n}_organisation"] = forms.ModelChoiceField(
                queryset=orgs, required=required, label=f"Party {n}: organisation"
            )
            self.fields[f"party_{n}_role"] = forms.ChoiceField(
                choices=[("", "---------"), *PartyRole.choices],
                required=required,
                label=f"Party {n}: role",
            )

    def clean(self):
        data = super().clean()
        parties = []
        for n in range(1, PARTY_ROWS + 1):
            org, role = data.get(f"party_{n}_organisation"), data.get(f"party_{n}_role")
            if org and role:
                parties.append((org, role))
            elif org or role:
                self.add_error(f"party_{n}_role", "Give both the organisation and its role.")
        data["parties"] = parties
        return data


class SignForm(forms.Form):
    full_name = forms.CharField(
        label="Your full name",
        help_text="Type your name as your signature.",
        **limits.chars(limits.TEXT_SHORT),
    )
    confirm = forms.BooleanField(
        label="I have read the document and sign it on behalf of my organisation",
        required=False,
    )

    def __init__(self, *args, expected_name: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["full_name"].error_messages["required"] = "Type your full name to sign."
        if expected_name.strip():
            self.fields["full_name"].help_text = (
                f"Type your name as registered, “{expected_name.strip()}”, as your signature "
                "(capitals and extra spaces do not matter)."
            )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        **limits.chars(limits.TEXT_MEDIUM),
    )


class RequestStartForm(forms.Form):
    project_title = forms.CharField(**limits.chars(limits.TITLE))


class RequestForm(forms.Form):
    project_title = forms.CharField(**limits.chars(limits.TITLE))
    research_question = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), **limits.chars(limits.TEXT_LONG)
    )
    lay_summary = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Plain language; it appears in the public data-use register if approved.",
        **limits.chars(limits.TEXT_LONG),
    )
    purpose = forms.ChoiceField(
        choices=[("", "---------"), *Purpose.choices],
        required=False,
        help_text="From the GA4GH Data Use Ontology.",
    )
    requested_end_date = forms.DateField(
        required=False,
        widget=DATE,
        validators=[limits.check_requested_end_date],
        help_text=f"At most {limits.REQUESTED_END_YEARS} years ahead.",
    )
    ethics_reference = forms.CharField(
        label="Ethics approval reference", required=False, **limits.chars(limits.TEXT_SHORT)
    )
    team_members = forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, access_request, **kwargs):
        super().__init__(*args, **kwargs)
        self.access_request = access_request
        self.fields["team_members"].queryset = (
            get_user_model()
            .objects.filter(memberships__organisation=access_request.organisation, is_active=True)
            .exclude(pk=access_request.applicant_id)
            .order_by("last_name", "username")
        )
        self.fields["team_members"].label_from_instance = lambda u: (
            f"{u.get_full_name() or u.get_username()} ({u.get_username()})"
        )
        self.items = list(
            access_request.items.select_related(
                "dataset__current_version__terms_of_use", "dataset__publisher", "terms"
            )
        )
        for item in self.items:
            modes = ds.offered_modes(item.dataset)
            self.fields[f"mode_{item.dataset_id}"] = forms.ChoiceField(
                label=f"Access mode for {ds.title(item.dataset)}",
                choices=[(m, ds.ACCESS_MODE_LABELS.get(m, m)) for m in modes],
                initial=item.access_mode,
            )
            terms = ds.current_terms(item.dataset)
            if terms is not None:
                self.fields[f"terms_{item.dataset_id}"] = forms.BooleanField(
                    label=f"I accept the terms of use (version {terms.version}) of {ds.title(item.dataset)}",
                    required=False,
                    initial=item.terms_id == terms.pk,
                    help_text=terms.text[:2000],
                )

    def item_changes(self) -> dict:
        result = {}
        for item in self.items:
            change = {"access_mode": self.cleaned_data.get(f"mode_{item.dataset_id}")}
            if f"terms_{item.dataset_id}" in self.fields:
                change["accept_terms"] = bool(self.cleaned_data.get(f"terms_{item.dataset_id}"))
            result[item.dataset_id] = change
        return result


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(choices=AttachmentKind.choices)
    file = forms.FileField(help_text="PDF, PNG, JPEG, TXT, DOCX or ODT; at most 10 MB.")


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", widget=forms.Textarea(attrs={"rows": 3}), **limits.chars(limits.TEXT_LONG)
    )
