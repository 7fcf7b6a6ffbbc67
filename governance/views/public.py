"""Public pages: the data-use register and per-custodian statistics."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render

from .. import datasets as ds
from .. import statistics


def register(request):
    page = Paginator(statistics.register_entries(), 25).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.approved = [
            (i, ds.title(i.dataset), ds.ACCESS_MODE_LABELS.get(i.access_mode))
            for i in statistics.approved_items(entry)
        ]
    return render(request, "governance/register.html", {"page": page})


def custodian_statistics(request):
    return render(
        request, "governance/statistics.html", {"rows": statistics.custodian_statistics()}
    )
