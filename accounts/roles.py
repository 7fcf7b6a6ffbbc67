"""The roles a person holds in each organisation, read once per user object.

Kept apart from ``permissions.py`` so the models (``ApiToken.scope_of``) can read roles without
importing the permission helpers, which import the models: no circle.
"""

from __future__ import annotations

_CACHE_ATTR = "_optima_roles_by_org"


def roles_by_org(user) -> dict[int, frozenset[str]]:
    """{organisation id: roles}, computed once per user object (one query)."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = {}
        rows = user.memberships.values_list("organisation_id", "roles__name")
        for org_id, role in rows:
            cached.setdefault(org_id, set())
            if role:
                cached[org_id].add(role)
        cached = {k: frozenset(v) for k, v in cached.items()}
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_roles(user) -> None:
    """Drop the cached roles (after a membership or role change)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
