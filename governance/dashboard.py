"""Governance sections of the dashboard: each person's next governance actions."""

from __future__ import annotations

from django.urls import reverse

from accounts.dashboard import Item, Section

from . import datasets as ds
from . import selectors
from .models import EntitlementStatus


def sections(user) -> list[Section]:
    if not getattr(user, "is_authenticated", False):
        return []
    from accounts import permissions as base
    from accounts.models import Role

    result: list[Section] = []
    if base.has_any_role(user, Role.RESEARCHER):
        mine = selectors.access_request_list(user=user, filters={"mine": True})[:10]
        result.append(
            Section(
                "My access requests",
                [
                    Item(
                        f"{r.reference}: {r.project_title}",
                        reverse("governance:request_detail", args=[r.pk]),
                        r.get_status_display(),
                    )
                    for r in mine
                ],
                "No access request yet: collect datasets from the catalogue into your basket.",
                order=20,
            )
        )
        entitlements = (
            selectors.entitlement_list(user=user, filters={"mine": True})
            .filter(status__in=(EntitlementStatus.ACTIVE, EntitlementStatus.SUSPENDED))
            .select_related("dataset__current_version")[:20]
        )
        result.append(
            Section(
                "My entitlements",
                [
                    Item(
                        ds.title(e.dataset),
                        reverse("governance:entitlements"),
                        f"{e.get_access_mode_display()} until {e.ends_at:%Y-%m-%d}"
                        + (" · suspended" if e.status == EntitlementStatus.SUSPENDED else ""),
                    )
                    for e in entitlements
                ],
                "No entitlement yet.",
                order=21,
            )
        )
    if base.has_any_role(user, Role.DAC_MEMBER):
        waiting = selectors.decisions_waiting(user=user)[:20]
        result.append(
            Section(
                "Decisions waiting",
                [
                    Item(
                        f"{d.request.reference}: {d.request.project_title}",
                        reverse("governance:request_detail", args=[d.request_id]),
                        f"for {d.custodian.name} · {d.get_status_display()}",
                    )
                    for d in waiting
                ],
                "No access request is waiting for your committee.",
                order=22,
            )
        )
    if base.has_any_role(user, Role.SIGNATORY):
        to_sign = selectors.agreements_to_sign(user=user)[:20]
        result.append(
            Section(
                "Documents to sign",
                [
                    Item(
                        f"{a.reference}: {a.title}",
                        reverse("governance:agreement_detail", args=[a.pk]),
                        f"sent {a.sent_at:%Y-%m-%d}" if a.sent_at else "",
                    )
                    for a in to_sign
                ],
                "Nothing to sign.",
                order=23,
            )
        )
    return result
