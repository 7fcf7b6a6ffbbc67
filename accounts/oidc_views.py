"""Log-in page, federated login (start, callback, link) and logout with RP-initiated logout."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from . import oidc
from .oidc_backends import password_login_enabled

log = logging.getLogger(__name__)
PASSWORD_OFF = "Password login is turned off on this portal: log in with your institution."


class LoginView(auth_views.LoginView):
    """The password form (unless ``PASSWORD_LOGIN=0``) and one button per identity provider."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["providers"] = oidc.providers()
        context["password_login"] = password_login_enabled()
        return context

    def post(self, request, *args, **kwargs):
        if not password_login_enabled():
            context = self.get_context_data(form=self.get_form())
            context["refusal"] = PASSWORD_OFF
            return render(request, self.template_name, context, status=403)
        return super().post(request, *args, **kwargs)


def _safe_next(request, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _provider_or_404(key: str) -> oidc.Provider:
    p = oidc.provider(key)
    if p is None:
        raise Http404("No such identity provider.")
    return p


def _callback_url(request, p: oidc.Provider) -> str:
    return request.build_absolute_uri(reverse("accounts:oidc_callback", args=[p.key]))


def _authorize(request, p: oidc.Provider):
    try:
        return oidc.client(p).authorize_redirect(request, _callback_url(request, p))
    except Exception as exc:  # network or metadata errors: the provider is unreachable
        log.warning("OIDC discovery of %s failed: %s", p.issuer, exc)
        messages.error(request, f"{p.name} cannot be reached right now. Try again later.")
        return redirect("accounts:login")


@require_GET
def oidc_start(request, key: str):
    """Send the browser to the provider (state, nonce and PKCE verifier kept in the session)."""
    p = _provider_or_404(key)
    request.session.pop(oidc.SESSION_LINK, None)
    request.session[oidc.SESSION_NEXT] = _safe_next(request, request.GET.get("next"))
    return _authorize(request, p)


@login_required
@require_POST
def oidc_link(request, key: str):
    """A logged-in person links an account at a provider to this portal account."""
    from . import otp

    p = _provider_or_404(key)
    # A session that passed only the password step must not attach an account whose provider
    # asserts MFA: that would skip the TOTP the person's role requires.
    if otp.second_factor_required(request.user) and not request.user.is_verified():
        return redirect("/accounts/2fa/verify/?next=/accounts/tokens/")
    request.session[oidc.SESSION_LINK] = request.user.pk
    request.session[oidc.SESSION_NEXT] = reverse("accounts:api_tokens")
    return _authorize(request, p)


def _validated_claims(request, p: oidc.Provider) -> tuple[dict, str]:
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError
    from requests import RequestException

    try:
        token = oidc.client(p).authorize_access_token(request)
    except (AuthlibBaseError, JoseError, RequestException, ValueError, KeyError) as exc:
        raise oidc.Refused(
            f"invalid_response: {type(exc).__name__}",
            f"The login at {p.name} did not complete. Try again.",
        ) from exc
    claims = dict(token.get("userinfo") or {})
    if not claims.get("sub") or not claims.get("iss"):
        raise oidc.Refused("no_id_token", f"{p.name} did not send an ID token.")
    return claims, token.get("id_token", "")


@require_GET
def oidc_callback(request, key: str):
    from django_otp import login as otp_login

    p = _provider_or_404(key)
    link_pk = request.session.pop(oidc.SESSION_LINK, None)
    next_url = request.session.pop(oidc.SESSION_NEXT, None) or reverse("accounts:dashboard")
    link_to = request.user if link_pk and request.user.pk == link_pk else None
    claims: dict = {}
    try:
        claims, id_token = _validated_claims(request, p)
        outcome = oidc.federated_login(p=p, claims=claims, link_to=link_to)
    except oidc.Refused as refused:
        oidc.refuse(p=p, reason=refused.reason, claims=claims, actor=link_to)
        messages.error(request, str(refused))
        return redirect("accounts:api_tokens" if link_to else "accounts:login")
    if link_to is None:
        login(request, outcome.user, backend="django.contrib.auth.backends.ModelBackend")
    if outcome.mfa:
        otp_login(request, outcome.identity)
    request.session[oidc.SESSION_PROVIDER] = p.key
    request.session[oidc.SESSION_ID_TOKEN] = id_token
    if outcome.linked:
        messages.success(request, f"Your {p.name} account is linked: you can log in with it.")
    for invitation in outcome.invitations:
        messages.success(request, f"You joined {invitation.organisation.name}.")
    if outcome.invitations and next_url.startswith("/invitations/"):
        next_url = reverse("accounts:dashboard")  # the invitation page has nothing left to do
    return HttpResponseRedirect(next_url)


@require_POST
def logout(request):
    """End the portal session; where the provider offers it, end the provider's session too."""
    key = request.session.get(oidc.SESSION_PROVIDER)
    id_token = request.session.get(oidc.SESSION_ID_TOKEN)
    auth_logout(request)
    p = oidc.provider(key) if key else None
    if p is not None:
        try:
            endpoint = oidc.end_session_endpoint(p)
        except Exception as exc:  # the portal's session is over either way
            log.warning("OIDC metadata of %s unavailable at logout: %s", p.issuer, exc)
            endpoint = None
        if endpoint:
            query = {
                "client_id": p.client_id,
                "post_logout_redirect_uri": request.build_absolute_uri(reverse("accounts:login")),
            }
            if id_token:
                query["id_token_hint"] = id_token
            separator = "&" if "?" in endpoint else "?"
            # A page, not a redirect: the form-action CSP of the page whose "Log out" form was
            # posted forbids redirecting that post to another origin.
            return render(
                request,
                "accounts/logged_out.html",
                {"provider": p, "end_session_url": endpoint + separator + urlencode(query)},
            )
    return redirect(settings.LOGOUT_REDIRECT_URL)
