from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from accounts import limits

from . import links
from .models import Category, Component, FeedbackItem, Persona, Priority, Severity


class WidgetForm(forms.Form):
    """The short form behind the feedback button; the page and version are recorded by themselves."""

    category = forms.ChoiceField(choices=Category.choices, initial=Category.BUG)
    component = forms.ChoiceField(choices=Component.choices)
    persona = forms.ChoiceField(label="You are giving feedback as", choices=Persona.choices)
    severity = forms.ChoiceField(
        label="Severity (bugs only)",
        choices=[("", "—"), *Severity.choices],
        required=False,
    )
    title = forms.CharField(label="Summary", **limits.chars(limits.TEXT_SHORT))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Markdown is supported. Do not include patient data.",
        **limits.chars(limits.TEXT_LONG),
    )
    contact_consent = forms.BooleanField(
        label="The platform team may contact me about this", required=False
    )
    shared = forms.BooleanField(
        label="Share with the other test sites (they see it with its attachments, may comment and vote)",
        required=False,
    )
    page_path = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)
    site = forms.ModelChoiceField(queryset=None, label="Test site", required=False)

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        if sites is not None and len(sites) <= 1:
            self.fields["site"].widget = forms.HiddenInput()


class FeedbackForm(WidgetForm):
    """The full form: steps, attachments and a link to the object the feedback is about."""

    steps_to_reproduce = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Markdown.",
        **limits.chars(limits.TEXT_LONG),
    )
    component_version = forms.CharField(
        max_length=limits.VERSION,
        required=False,
        help_text="Leave empty to record the version running now.",
    )
    link_type = forms.ChoiceField(label="About a", required=False)
    link_id = forms.CharField(
        label="Its identifier",
        max_length=200,
        required=False,
        help_text="A dataset's identifier, or the number of an analysis or CDS evaluation.",
    )
    attachment = forms.FileField(
        required=False,
        help_text="Screenshot or log: PNG, JPEG, GIF, WebP, PDF or plain text.",
    )
    page_path = forms.CharField(max_length=500, required=False, label="Page (path)")

    field_order = [
        "site",
        "category",
        "component",
        "component_version",
        "severity",
        "persona",
        "title",
        "description",
        "steps_to_reproduce",
        "link_type",
        "link_id",
        "attachment",
        "page_path",
        "contact_consent",
        "shared",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["link_type"].choices = [("", "—"), *links.linkable_models().items()]
        self.order_fields(self.field_order)


class EditForm(forms.ModelForm):
    class Meta:
        formfield_callback = limits.formfield_callback(
            description=limits.TEXT_LONG, steps_to_reproduce=limits.TEXT_LONG
        )
        model = FeedbackItem
        fields = [
            "title",
            "description",
            "steps_to_reproduce",
            "persona",
            "severity",
            "contact_consent",
            "shared",
        ]


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Markdown.",
        **limits.chars(limits.TEXT_LONG),
    )


class AttachmentForm(forms.Form):
    file = forms.FileField(label="Attachment")


class TriageForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=None, required=False)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    labels = forms.CharField(
        required=False, help_text="Comma-separated, e.g. regression, ui", max_length=300
    )

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (
            team if team is not None else get_user_model().objects.none()
        )

    def clean_labels(self) -> list[str]:
        return [x.strip() for x in self.cleaned_data["labels"].split(",") if x.strip()]


class ResolveForm(forms.Form):
    resolution_note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Markdown.",
        **limits.chars(limits.TEXT_LONG),
    )
    fixed_in_version = forms.CharField(max_length=limits.VERSION, required=False)


class WontFixForm(forms.Form):
    resolution_note = forms.CharField(
        label="Why not",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Markdown.",
        **limits.chars(limits.TEXT_LONG),
    )


class DuplicateForm(forms.Form):
    duplicate_of = forms.IntegerField(
        label="Duplicate of item #", **limits.between(1, limits.ID_MAX)
    )


class ReopenForm(forms.Form):
    reason = forms.CharField(
        label="Why reopen",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        **limits.chars(limits.TEXT_MEDIUM),
    )


TRANSITION_FORMS = {
    "triage": TriageForm,
    "start": None,
    "resolve": ResolveForm,
    "wont_fix": WontFixForm,
    "duplicate": DuplicateForm,
    "reopen": ReopenForm,
}
