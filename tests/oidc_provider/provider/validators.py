from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    """ID token claims: e-mail (verified), names, and ``amr`` (``mfa`` for the group "mfa")."""

    oidc_claim_scope = None  # every claim below goes into the ID token

    def get_additional_claims(self, request):
        user = request.user
        mfa = user.groups.filter(name="mfa").exists()
        return {
            "email": user.email,
            "email_verified": True,
            "preferred_username": user.username,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
        }
