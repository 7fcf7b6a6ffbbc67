"""Access: one shape. Every app's ``permissions.restrict`` dispatches on the model (unknown model is
an error, never everything), the DRF mixin answers 404 for objects outside, and no DRF view in the
URLconf can serve a protected model without the mixin unless it sits on the commented allow-list."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.views import APIView

from accounts import permissions, services
from accounts.api_mixins import RestrictedQuerysetMixin
from accounts.models import ApiToken, AuditEvent, Organisation
from accounts.permissions import ModelRestrictor, Restrictor, UnknownModelError

APPS = ("accounts", "catalogue", "cds", "feedback", "governance", "federation", "central")

# DRF views that serve no protected model on behalf of a user, each with its reason.
ALLOWED_WITHOUT_MIXIN = {
    # The API root: links only.
    "accounts.api.api_root",
    # The caller's own account and memberships (self-only, read from request.user).
    "accounts.api.me",
    # The caller's own recovery codes (self-only; session with a verified second factor).
    "accounts.recovery.recovery_codes_api",
    # Static descriptions of the analysis kinds and the FL parameter schema: no rows.
    "federation.api.analysis_types",
    "federation.flare.api.params_schema",
    # Node-facing endpoints: the caller is a node (token authentication), every lookup is
    # filtered by ``node=request.auth``; no user, so no user restrict.
    "federation.node_api.HeartbeatView",
    "federation.node_api.ClaimView",
    "federation.node_api.ResultView",
    "federation.node_api.SecureKeyView",
    "federation.node_api.SecurePeersView",
    "federation.node_api.SecureMaskedView",
    "federation.node_api.SecureHoldView",
    # The central node's endpoints: the caller is the central node (its credential), which
    # serves every central copy; no user, so no user restrict.
    "central.node_api.DatasetsView",
    "central.node_api.DatasetTokenView",
    # The public data-use register and custodian statistics: published aggregates for everyone.
    "governance.api.public.DataUseRegisterViewSet",
    "governance.api.public.CustodianStatisticsViewSet",
    # The OpenAPI schema and its viewer.
    "optima_portal.api_docs.SchemaView",
    "optima_portal.api_docs.SwaggerView",
}


def _drf_views():
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.callback

    seen = {}
    for callback in walk(get_resolver().url_patterns):
        cls = getattr(callback, "cls", None)
        if cls is not None and issubclass(cls, APIView):
            seen[f"{cls.__module__}.{cls.__name__}"] = cls
    return seen


def test_every_drf_view_uses_the_mixin_or_is_on_the_allow_list():
    views = _drf_views()
    assert len(views) > 20  # the walk found the API, not an empty URLconf
    missing = sorted(
        name
        for name, cls in views.items()
        if not issubclass(cls, RestrictedQuerysetMixin) and name not in ALLOWED_WITHOUT_MIXIN
    )
    assert missing == [], f"DRF views without RestrictedQuerysetMixin: {missing}"
    stale = sorted(ALLOWED_WITHOUT_MIXIN - set(views))
    assert stale == [], f"allow-list entries no longer in the URLconf: {stale}"


def test_views_with_the_mixin_name_their_apps_restrict_and_keep_its_get_queryset():
    for name, cls in _drf_views().items():
        if not issubclass(cls, RestrictedQuerysetMixin):
            continue
        app = cls.__module__.split(".")[0]
        assert cls.restrict is importlib.import_module(f"{app}.permissions").restrict, name
        # A subclass overriding get_queryset would skip the restrict: it sets ``queryset`` or
        # overrides get_base_queryset instead.
        assert cls.get_queryset is RestrictedQuerysetMixin.get_queryset, name


@pytest.mark.parametrize("app", APPS)
def test_every_app_has_exactly_one_public_restrict(app):
    module = importlib.import_module(f"{app}.permissions")
    assert isinstance(module.restrict, ModelRestrictor)
    names = [n for n in vars(module) if n.startswith("restrict") and not n.startswith("_")]
    assert names == ["restrict"], names


def test_an_unknown_model_is_an_error_not_everything(db, researcher):
    from catalogue.permissions import restrict as catalogue_restrict

    with pytest.raises(UnknownModelError):
        catalogue_restrict(ApiToken.objects.all(), researcher)
    # Even a platform admin's bypass does not reach a model the app has no rules for.
    admin = get_user_model().objects.create_user("root", is_staff=True)
    with pytest.raises(UnknownModelError):
        catalogue_restrict(AuditEvent.objects.all(), admin)


def test_an_unknown_action_is_an_error(db, researcher):
    with pytest.raises(ValueError, match="unknown action"):
        permissions.restrict(Organisation.objects.all(), researcher, "delete")


def test_allows_asks_the_same_rule_about_one_object(db, researcher, outsider):
    token, _ = services.api_token_create(user=researcher, name="laptop")
    restrict = ModelRestrictor({ApiToken: Restrictor({"view": lambda qs, u: qs.filter(user=u)})})
    assert restrict.allows(token, researcher)
    assert not restrict.allows(token, outsider)
    assert permissions.allows(token, researcher, "revoke")
    assert not permissions.allows(token, outsider, "revoke")


def test_the_mixin_answers_404_for_another_users_token(db, api_as, researcher, outsider):
    token, _ = services.api_token_create(user=researcher, name="laptop")
    url = reverse("api-token-detail", args=[token.pk])
    attacker = api_as(outsider)
    assert attacker.delete(url).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    # A malformed or out-of-range key is a 404 too, never a server error.
    assert attacker.delete(url.replace(str(token.pk), "99999999999999999999999")).status_code == 404
    assert api_as(researcher).delete(url).status_code == 204


def test_the_view_helper_answers_404_outside(db, client_as, researcher, outsider, hospital_a):
    token, _ = services.api_token_create(user=researcher, name="laptop")
    response = client_as(outsider).post(reverse("accounts:api_token_revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    # Members of hospital A only see its member page.
    response = client_as(outsider).get(reverse("accounts:organisation", args=[hospital_a.slug]))
    assert response.status_code == 404
