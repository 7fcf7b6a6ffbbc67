"""The one base every DRF view of a protected model uses, so a new endpoint cannot forget access.

``restrict`` is the app's ``permissions.restrict``; ``restrict_action`` the action for reads, and
``restrict_actions`` maps a viewset action (``"cancel"``, ``"destroy"``) to another one. Generic views
get it in ``get_queryset`` and ``get_object`` (404 outside, and for malformed keys): they set
``queryset`` or override :meth:`get_base_queryset`, never ``get_queryset`` itself. Plain
``APIView``/``ViewSet`` classes call :meth:`restricted` and :meth:`restricted_object` themselves.
``tests/accounts/test_restricted_views.py`` walks the URLconf and fails for a DRF view that neither
uses this mixin nor sits on its commented allow-list.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Model, QuerySet

from .permissions import get_for_user_or_404


class RestrictedQuerysetMixin:
    """Apply the app's ``restrict`` to every queryset and object this view serves."""

    restrict: Callable[..., QuerySet] | None = None
    restrict_action: str = "view"
    restrict_actions: dict[str, str] = {}

    def get_restrict_action(self) -> str:
        action = getattr(self, "action", None) or ""
        return self.restrict_actions.get(action, self.restrict_action)

    def restricted(self, queryset: QuerySet, action: str | None = None) -> QuerySet:
        # Read through the class: a plain function stored on it must not be bound to ``self``.
        restrict = type(self).restrict
        if restrict is None:
            raise NotImplementedError(f"{type(self).__name__} must name its app's restrict")
        return restrict(queryset, self.request.user, action or self.get_restrict_action())

    def restricted_object(self, queryset: QuerySet, action: str | None = None, **lookup) -> Model:
        return get_for_user_or_404(self.restricted(queryset, action), **lookup)

    def get_base_queryset(self) -> QuerySet:
        """The unrestricted rows (with their joins and filters); ``restrict`` comes after."""
        parent = getattr(super(), "get_queryset", None)
        return parent() if parent is not None else self.queryset.all()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: the model, no rows
            queryset = self.queryset if self.queryset is not None else self.get_base_queryset()
            return queryset.none()
        return self.restricted(self.get_base_queryset())

    def get_object(self) -> Model:
        queryset = self.filter_queryset(self.get_queryset())
        url_kwarg = self.lookup_url_kwarg or self.lookup_field
        obj = get_for_user_or_404(queryset, **{self.lookup_field: self.kwargs[url_kwarg]})
        self.check_object_permissions(self.request, obj)
        return obj
