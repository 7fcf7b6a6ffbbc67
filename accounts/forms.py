from __future__ import annotations

from django import forms

from . import limits
from .models import Role


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=Role.choices, **kwargs)


class InvitationForm(forms.Form):
    email = forms.EmailField(help_text="The person receives a link valid for 14 days.")
    roles = RolesField()


class MembershipRolesForm(forms.Form):
    roles = RolesField(
        required=False, help_text="Untick every role to remove the person from the organisation."
    )


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. 'analysis notebook'."
    )
    expires_at = forms.DateTimeField(
        required=False,
        validators=[limits.check_token_expiry],
        help_text="Optional, e.g. 2027-06-30 18:00.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class SignupForm(forms.Form):
    """Used when an invitation is accepted by someone without an account."""

    username = forms.RegexField(
        r"^[\w.@+-]{3,150}$",
        max_length=150,
        error_messages={"invalid": "3–150 letters, digits and . @ + - _ only."},
    )
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    password1 = forms.CharField(
        label="Password",
        widget=forms.PasswordInput,
        strip=False,
        **limits.chars(limits.PASSWORD),
    )
    password2 = forms.CharField(
        label="Password again",
        widget=forms.PasswordInput,
        strip=False,
        **limits.chars(limits.PASSWORD),
    )

    def clean_username(self):
        from django.contrib.auth import get_user_model

        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean(self):
        from django.contrib.auth.password_validation import validate_password

        data = super().clean()
        if data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            try:
                validate_password(data["password1"])
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data
