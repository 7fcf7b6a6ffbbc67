from __future__ import annotations

import csv
import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import dashboard, oidc, permissions, services
from .forms import ApiTokenForm, InvitationForm, MembershipRolesForm, SignupForm
from .htmx import render_page
from .models import ApiToken, FederatedIdentity, Invitation, Membership, Organisation, Role
from .oidc_backends import password_login_enabled
from .selectors import AuditEventFilter, audit_event_list

User = get_user_model()


def home(request):
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    return render(request, "accounts/home.html")


@login_required
def dashboard_view(request):
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("organisation")
        .prefetch_related("roles")
    )
    context = {
        "memberships": memberships,
        "sections": dashboard.collect(request.user),
        "is_platform_admin": permissions.is_platform_admin(request.user),
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
def organisation_list(request):
    organisations = permissions.restrict(Organisation.objects.all(), request.user)
    return render(request, "accounts/organisation_list.html", {"organisations": organisations})


def _org_for_member(request, slug: str) -> Organisation:
    """Organisation pages with member lists are for its members and platform admins (404 otherwise)."""
    return permissions.object_for_user_or_404(
        permissions.restrict, Organisation, request.user, "members", slug=slug
    )


def _can_admin_org(user, organisation: Organisation) -> bool:
    return permissions.allows(organisation, user, "administer")


def _org_for_admin(request, slug: str) -> Organisation:
    """Administration of an organisation: its administrators and platform admins (404 otherwise).

    Checked before any form is read, so a member's invalid POST never renders the admin panel.
    """
    organisation = _org_for_member(request, slug)
    if not _can_admin_org(request.user, organisation):
        raise Http404("No such organisation page.")
    return organisation


@login_required
def organisation_detail(request, slug: str):
    organisation = _org_for_member(request, slug)
    can_admin = _can_admin_org(request.user, organisation)
    memberships = organisation.memberships.select_related("user").prefetch_related("roles")
    invitations = organisation.invitations.filter(accepted_at__isnull=True) if can_admin else []
    return render(
        request,
        "accounts/organisation_detail.html",
        {
            "organisation": organisation,
            "memberships": memberships,
            "can_admin": can_admin,
            "invitations": invitations,
            "invite_form": InvitationForm(),
            "roles": Role.choices,
        },
    )


@login_required
@require_POST
def invitation_create(request, slug: str):
    organisation = _org_for_admin(request, slug)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_send(
                actor=request.user,
                organisation=organisation,
                email=form.cleaned_data["email"],
                roles=form.cleaned_data["roles"],
            )
        except PermissionDenied as exc:
            raise Http404 from exc
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("accounts:organisation", slug=slug)
    memberships = organisation.memberships.select_related("user").prefetch_related("roles")
    return render(
        request,
        "accounts/organisation_detail.html",
        {
            "organisation": organisation,
            "memberships": memberships,
            "can_admin": True,
            "invitations": organisation.invitations.filter(accepted_at__isnull=True),
            "invite_form": form,
            "roles": Role.choices,
        },
        status=400,
    )


@login_required
@require_http_methods(["GET", "POST"])
def membership_edit(request, slug: str, user_id: int):
    organisation = _org_for_admin(request, slug)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), organisation=organisation, user_id=user_id
    )
    form = MembershipRolesForm(request.POST or None, initial={"roles": membership.role_names})
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_set_roles(
                actor=request.user,
                organisation=organisation,
                user=membership.user,
                roles=form.cleaned_data["roles"],
            )
        except ValidationError as exc:
            form.add_error(
                "roles",
                exc.message_dict.get("roles", exc.messages)
                if hasattr(exc, "error_dict")
                else exc.messages,
            )
        else:
            messages.success(request, f"Roles of {membership.user.get_username()} saved.")
            return redirect("accounts:organisation", slug=slug)
    return render(
        request,
        "accounts/membership_edit.html",
        {"organisation": organisation, "membership": membership, "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    invitation = Invitation.find(token)
    if invitation is None or not invitation.is_open:
        return render(request, "accounts/invitation_invalid.html", status=404)
    if request.user.is_authenticated:
        if request.method == "POST":
            services.invitation_accept(invitation=invitation, user=request.user)
            messages.success(request, f"You joined {invitation.organisation.name}.")
            return redirect("accounts:dashboard")
        return render(request, "accounts/invitation_accept.html", {"invitation": invitation})
    if not password_login_enabled():
        # No password accounts: the person logs in with a provider that verifies the e-mail.
        status = 403 if request.method == "POST" else 200
        context = {"invitation": invitation, "providers": oidc.providers()}
        return render(request, "accounts/invitation_accept.html", context, status=status)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = User.objects.create_user(
            data["username"],
            invitation.email,
            data["password1"],
            first_name=data["first_name"],
            last_name=data["last_name"],
        )
        services.invitation_accept(invitation=invitation, user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome! You joined {invitation.organisation.name}.")
        return redirect("accounts:dashboard")
    return render(
        request,
        "accounts/invitation_accept.html",
        {"invitation": invitation, "form": form, "providers": oidc.providers()},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_token = services.api_token_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = ApiTokenForm()
    tokens = list(permissions.restrict(ApiToken.objects.all(), request.user))
    scope = ApiToken.scope_of(request.user)
    for token in tokens:
        token.needs_renewal = not token.covers(scope)
    return render(
        request,
        "accounts/api_tokens.html",
        {
            "form": form,
            "tokens": tokens,
            "new_token": new_token,
            "identities": FederatedIdentity.objects.filter(user=request.user),
            "providers": oidc.providers(),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def api_token_revoke(request, pk: int):
    token = permissions.object_for_user_or_404(
        permissions.restrict, ApiToken, request.user, "revoke", pk=pk
    )
    services.api_token_revoke(user=request.user, token=token)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:api_tokens")


def _require_auditor(request) -> None:
    if not (
        permissions.is_platform_admin(request.user)
        or permissions.has_any_role(request.user, Role.ORG_ADMIN)
    ):
        raise Http404


@login_required
def audit_trail(request):
    _require_auditor(request)
    filterset = AuditEventFilter(request.GET or None)
    events = audit_event_list(user=request.user, filters=request.GET)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    # The export link is built from the same query, so it exports what the page shows.
    query = {k: v for k, v in query.lists() if any(v)}
    return render_page(
        request,
        "accounts/audit_trail.html",
        {"filter": filterset, "page": page, "query": urlencode(query, doseq=True)},
        partial="accounts/partials/audit_panel.html",
        status=400 if filterset.is_bound and not filterset.is_valid() else 200,
    )


class _Echo:
    def write(self, value):
        return value


@login_required
def audit_export(request):
    _require_auditor(request)
    filterset = AuditEventFilter(request.GET or None)
    if filterset.is_bound and not filterset.is_valid():
        problems = [
            f"{filterset.form[n].label}: {' '.join(e)}" for n, e in filterset.errors.items()
        ]
        return HttpResponseBadRequest("\n".join(problems), content_type="text/plain")
    events = audit_event_list(user=request.user, filters=request.GET).order_by("seq")[
        : settings.AUDIT_EXPORT_MAX_ROWS
    ]
    writer = csv.writer(_Echo())
    header = [
        "seq",
        "timestamp",
        "actor",
        "action",
        "object_type",
        "object_id",
        "organisation",
        "payload",
        "prev_hash",
        "hash",
    ]

    def rows():
        yield writer.writerow(header)
        for e in events.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    e.seq,
                    e.timestamp.isoformat(),
                    e.actor_repr,
                    e.action,
                    e.object_type,
                    e.object_id,
                    e.organisation.name if e.organisation else "",
                    json.dumps(e.payload, sort_keys=True),
                    e.prev_hash,
                    e.hash,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="optima-audit.csv"'
    return response


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)
