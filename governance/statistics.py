"""Transparency: the public data-use register and per-custodian decision statistics."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from django.db.models import Min, Prefetch, Q, QuerySet

from accounts.models import Organisation

from .models import AccessRequest, Decision, DecisionStatus, RequestedDataset, RequestStatus


def register_entries() -> QuerySet[AccessRequest]:
    """Approved projects (at least one custodian approved and the request was not withdrawn)."""
    return (
        AccessRequest.objects.filter(decisions__status=DecisionStatus.APPROVED)
        .exclude(status=RequestStatus.WITHDRAWN)
        .annotate(
            approved_at=Min(
                "decisions__decided_at", filter=Q(decisions__status=DecisionStatus.APPROVED)
            )
        )
        .select_related("organisation")
        .prefetch_related(
            Prefetch(
                "items",
                queryset=RequestedDataset.objects.select_related(
                    "dataset__current_version", "dataset__publisher"
                ),
            ),
            "decisions",
        )
        .order_by("-approved_at", "-pk")
    )


def approved_items(access_request: AccessRequest) -> list[RequestedDataset]:
    """The datasets of a request whose custodian approved (uses the prefetched rows)."""
    approving = {
        d.custodian_id
        for d in access_request.decisions.all()
        if d.status == DecisionStatus.APPROVED
    }
    return [i for i in access_request.items.all() if i.custodian_id in approving]


@dataclass
class CustodianRow:
    organisation: Organisation
    requests: int
    decided: int
    approved: int
    approval_rate: float | None
    median_days: float | None


def custodian_statistics() -> list[CustodianRow]:
    rows = Decision.objects.exclude(request__status=RequestStatus.DRAFT).values_list(
        "custodian_id", "status", "decided_at", "request__first_submitted_at"
    )
    per_org: dict[int, list] = {}
    for org_id, status, decided_at, submitted_at in rows:
        per_org.setdefault(org_id, []).append((status, decided_at, submitted_at))
    orgs = Organisation.objects.in_bulk(list(per_org))
    result = []
    for org_id, decisions in per_org.items():
        final = [d for d in decisions if d[0] in (DecisionStatus.APPROVED, DecisionStatus.REJECTED)]
        approved = sum(1 for d in final if d[0] == DecisionStatus.APPROVED)
        days = [
            (decided - submitted).total_seconds() / 86400
            for _, decided, submitted in final
            if decided and submitted
        ]
        result.append(
            CustodianRow(
                organisation=orgs[org_id],
                requests=len(decisions),
                decided=len(final),
                approved=approved,
                approval_rate=approved / len(final) if final else None,
                median_days=round(median(days), 1) if days else None,
            )
        )
    return sorted(result, key=lambda r: r.organisation.name)
