"""Which version of a component a site runs, filled into feedback by itself.

Portal components (catalogue, governance, federation, CDS, other) run the central portal's
``settings.PORTAL_VERSION``. Node agents run at the hospitals; their versions come from the
federation app's node heartbeats once that app has them. The federation app is above this one in
the layers, so it is looked up lazily by name and every failure means "not known yet".
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError

from .models import Component

log = logging.getLogger(__name__)

# Where node versions are read from: (app label, model name, organisation field, version field).
NODE_SOURCE = ("federation", "Node", "organisation", "agent_version")


def portal_version() -> str:
    return str(getattr(settings, "PORTAL_VERSION", ""))


def node_agent_versions(site) -> list[str]:
    """The node-agent versions a site's nodes last reported (newest distinct first); [] if unknown."""
    if site is None:
        return []
    app_label, model_name, org_field, version_field = getattr(
        settings, "FEEDBACK_NODE_VERSION_SOURCE", NODE_SOURCE
    )
    try:
        model = apps.get_model(app_label, model_name)
        values = (
            model.objects.filter(**{org_field: site.pk})
            .exclude(**{version_field: ""})
            .values_list(version_field, flat=True)
            .distinct()
        )
        return sorted({str(v) for v in values if v}, reverse=True)
    except (LookupError, ImportError, FieldError, ValueError, TypeError):
        return []
    except Exception:
        log.warning("Could not read node-agent versions for site %s", site.pk, exc_info=True)
        return []


def node_agent_versions_by_site(site_ids) -> dict[int, list[str]]:
    """{site id: versions its nodes last reported} for many sites in one query."""
    app_label, model_name, org_field, version_field = getattr(
        settings, "FEEDBACK_NODE_VERSION_SOURCE", NODE_SOURCE
    )
    result: dict[int, set[str]] = {pk: set() for pk in site_ids}
    try:
        model = apps.get_model(app_label, model_name)
        rows = (
            model.objects.filter(**{f"{org_field}__in": list(site_ids)})
            .exclude(**{version_field: ""})
            .values_list(org_field, version_field)
            .distinct()
        )
        for site_id, version in rows:
            result.setdefault(site_id, set()).add(str(version))
    except (LookupError, ImportError, FieldError, ValueError, TypeError):
        pass
    except Exception:  # a half-migrated federation table must never break feedback
        log.warning("Could not read node-agent versions", exc_info=True)
    return {pk: sorted(v, reverse=True) for pk, v in result.items()}


def component_version(component: str, site=None) -> str:
    """The version filled in for ``component`` at ``site`` when the author gave none."""
    if component == Component.NODE_AGENT:
        versions = node_agent_versions(site)
        return versions[0] if len(versions) == 1 else ""
    return portal_version()


def site_versions(site) -> dict:
    return {"portal": portal_version(), "node_agents": node_agent_versions(site)}


def component_for_path(path: str) -> str:
    """A sensible default component for the page the feedback button was pressed on."""
    first = path.strip("/").split("/", 1)[0]
    return {
        "catalogue": Component.CATALOGUE,
        "governance": Component.GOVERNANCE,
        "federation": Component.FEDERATION,
        "cds": Component.CDS,
    }.get(first, Component.OTHER)
