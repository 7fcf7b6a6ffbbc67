"""The ground every app's access control stands on, and the accounts app's own choke point.

Roles come from memberships (a role is held *in* an organisation); object-level grants come from
django-guardian (the catalogue reads them: see docs/architecture.md, "Access: one shape"). Every app's
``permissions.py`` exposes one ``restrict(queryset, user, action="view")``, a :class:`ModelRestrictor`
that dispatches on the queryset's model, and every view, API view and export goes through it (DRF
views through :class:`accounts.api_mixins.RestrictedQuerysetMixin`, HTML views through
:func:`object_for_user_or_404`). Objects a user may not see answer 404, never 403, so an id reveals
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError
from django.db import DataError
from django.db.models import Model, QuerySet
from django.http import Http404

from .models import ApiToken, AuditEvent, Notification, Organisation, OrganisationKind, Role
from .roles import forget_roles as forget_roles  # re-exported: callers use permissions.<name>
from .roles import roles_by_org as roles_by_org


def is_platform_admin(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def member_org_ids(user) -> set[int]:
    return set(roles_by_org(user))


def org_ids_with_role(user, *roles: str) -> set[int]:
    wanted = set(roles)
    return {org for org, held in roles_by_org(user).items() if held & wanted}


def has_role(user, organisation: Organisation | int | None, *roles: str) -> bool:
    if organisation is None:
        return False
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    return bool(roles_by_org(user).get(org_id, frozenset()) & set(roles))


def has_any_role(user, *roles: str) -> bool:
    return bool(org_ids_with_role(user, *roles))


def is_curator(user) -> bool:
    """Curators review the catalogue: a platform role held in the platform operator organisation."""
    if is_platform_admin(user):
        return True
    org_ids = org_ids_with_role(user, Role.CURATOR)
    return (
        bool(org_ids)
        and Organisation.objects.filter(pk__in=org_ids, kind=OrganisationKind.PLATFORM).exists()
    )


def get_for_user_or_404(restricted: QuerySet, **lookup) -> Model:
    """Fetch one object from an already restricted queryset; anything else is a 404.

    A malformed or out-of-range key (``/items/99999999999999999999999/``) is a 404 too, never a
    server error (found by the API fuzzer: SQLite overflows, PostgreSQL raises a DataError)."""
    try:
        obj = restricted.filter(**lookup).first()
    except (TypeError, ValueError, OverflowError, ValidationError, DataError) as exc:
        raise Http404("No such object.") from exc
    if obj is None:
        raise Http404("No such object.")
    return obj


class Restrictor:
    """Maps ``action`` names to queryset filters for one model: an app's single choke point.

    ``rules`` maps an action to ``f(queryset, user) -> queryset``. Platform administrators see
    everything unless an action is listed in ``admin_bypass_excluded``.
    """

    def __init__(
        self,
        rules: dict[str, Callable[[QuerySet, object], QuerySet]],
        *,
        admin_bypass_excluded: Iterable[str] = (),
    ) -> None:
        self.rules = rules
        self.admin_bypass_excluded = set(admin_bypass_excluded)

    def __call__(self, queryset: QuerySet, user, action: str = "view") -> QuerySet:
        if action not in self.rules:
            raise ValueError(f"unknown action {action!r}; known: {sorted(self.rules)}")
        if is_platform_admin(user) and action not in self.admin_bypass_excluded:
            return queryset
        return self.rules[action](queryset, user)


class UnknownModelError(LookupError):
    """A queryset of a model no rule covers: an error, never "everything" (fail closed)."""


class ModelRestrictor:
    """An app's one ``restrict(queryset, user, action="view")``: picks the model's :class:`Restrictor`.

    ``restrict(Dataset.objects.all(), user, "edit")`` narrows to what ``user`` may edit; a queryset
    of a model without rules raises :class:`UnknownModelError`, an unknown action ``ValueError``.
    """

    def __init__(self, restrictors: dict[type[Model], Restrictor]) -> None:
        self.restrictors = dict(restrictors)

    @property
    def models(self) -> frozenset[type[Model]]:
        return frozenset(self.restrictors)

    def __call__(self, queryset: QuerySet, user, action: str = "view") -> QuerySet:
        try:
            restrictor = self.restrictors[queryset.model]
        except KeyError:
            names = sorted(m._meta.label for m in self.restrictors)
            raise UnknownModelError(
                f"no access rules for {queryset.model._meta.label}; this restrict knows {names}"
            ) from None
        return restrictor(queryset, user, action)

    def allows(self, obj: Model, user, action: str = "view") -> bool:
        """Whether ``user`` may do ``action`` on one loaded object (one query, the same rule)."""
        if obj is None or obj.pk is None:
            return False
        model = type(obj)
        return self(model._default_manager.filter(pk=obj.pk), user, action).exists()

    def allowed_pks(self, queryset: QuerySet, user, action: str = "view") -> set:
        """The primary keys among ``queryset`` ``user`` may do ``action`` on: one query for a list
        page that shows a button per row, instead of one ``allows`` per row."""
        return set(self(queryset, user, action).values_list("pk", flat=True))


def object_for_user_or_404(
    restrict: Callable[..., QuerySet],
    model_or_queryset: type[Model] | QuerySet,
    user,
    action: str = "view",
    **lookup,
) -> Model:
    """The view helper: one object through ``restrict``, or 404 (outside, missing or malformed)."""
    queryset = (
        model_or_queryset
        if isinstance(model_or_queryset, QuerySet)
        else model_or_queryset._default_manager.all()
    )
    return get_for_user_or_404(restrict(queryset, user, action), **lookup)


# --- The accounts app's own objects -------------------------------------------------------------
def _everyone(queryset: QuerySet, user) -> QuerySet:
    return queryset


def _member_orgs(queryset: QuerySet, user) -> QuerySet:
    return queryset.filter(pk__in=member_org_ids(user))


def _administered_orgs(queryset: QuerySet, user) -> QuerySet:
    return queryset.filter(pk__in=org_ids_with_role(user, Role.ORG_ADMIN))


def _own_tokens(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(user=user)


def _own_notifications(queryset: QuerySet, user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(recipient=user)


def _audit_view(queryset: QuerySet, user) -> QuerySet:
    """Platform admins see the whole trail (the bypass); org admins their organisations' events."""
    org_ids = org_ids_with_role(user, Role.ORG_ADMIN)
    return queryset.filter(organisation_id__in=org_ids) if org_ids else queryset.none()


restrict = ModelRestrictor(
    {
        # Organisations are public facts (name, country, kind, ROR); the page with the member list
        # is for members, its administration for organisation admins (platform admins: both).
        Organisation: Restrictor(
            {"view": _everyone, "members": _member_orgs, "administer": _administered_orgs}
        ),
        # A token is its owner's alone, platform admins included.
        ApiToken: Restrictor(
            {"view": _own_tokens, "revoke": _own_tokens},
            admin_bypass_excluded={"view", "revoke"},
        ),
        AuditEvent: Restrictor({"view": _audit_view}),
        # A notification is its recipient's alone, platform admins included.
        Notification: Restrictor(
            {"view": _own_notifications, "read": _own_notifications},
            admin_bypass_excluded={"view", "read"},
        ),
    }
)
allows = restrict.allows
