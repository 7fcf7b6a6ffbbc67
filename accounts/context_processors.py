from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from . import permissions
from .models import Role

# (label, url name, who sees it). Entries whose URL does not exist yet are skipped, so each app's
# navigation appears when its views land.
NAV = [
    ("Dashboard", "accounts:dashboard", "authenticated"),
    ("Catalogue", "catalogue:search", "anyone"),
    ("Access requests", "governance:home", "authenticated"),
    ("Analyses", "federation:home", "authenticated"),
    ("Nodes", "federation:nodes", "site_admin"),
    ("Decision support", "cds:home", "authenticated"),
    ("Feedback", "feedback:list", "authenticated"),
    ("Organisations", "accounts:organisations", "authenticated"),
    ("Audit trail", "accounts:audit", "auditor"),
    ("API", "api-docs", "authenticated"),
]


def _visible(rule: str, user) -> bool:
    if rule == "anyone":
        return True
    if not user.is_authenticated:
        return False
    if rule == "authenticated":
        return True
    if rule == "auditor":
        return permissions.is_platform_admin(user) or permissions.has_any_role(user, Role.ORG_ADMIN)
    if rule == "site_admin":
        return permissions.is_platform_admin(user) or permissions.has_any_role(
            user, Role.SITE_ADMIN
        )
    return False


def portal(request) -> dict:
    user = request.user
    nav = []
    for label, name, rule in NAV:
        if not _visible(rule, user):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        nav.append(
            {
                "label": label,
                "url": url,
                "active": request.path == url or (url != "/" and request.path.startswith(url)),
            }
        )
    return {
        "portal_nav": nav,
        "portal_version": settings.PORTAL_VERSION,
        # Every time on every page is in this one zone (Django's current time zone); the footer
        # says which.
        "portal_time_zone": settings.TIME_ZONE,
    }
