"""The central copies section of the personal dashboard (data stewards)."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from accounts.dashboard import Item, Section

from . import selectors
from .models import VersionStatus


def sections(user) -> list[Section]:
    if not getattr(user, "is_authenticated", False):
        return []
    datasets = selectors.central_datasets(user=user)
    if not datasets:
        return []
    served = {
        v.dataset_id: v
        for v in selectors.version_list(user=user).filter(status=VersionStatus.SERVED)
    }
    now = timezone.now()
    items = []
    for dataset in datasets:
        version = served.get(dataset.pk)
        if version is None:
            detail = "no version loaded yet: upload an extract"
        else:
            detail = f"version {version.number}, loaded {version.loaded_at:%Y-%m-%d}"
            interval = dataset.update_interval_days
            if interval and version.loaded_at + timedelta(days=interval) <= now:
                detail += f"; refresh due (every {interval} days)"
        items.append(Item(dataset.title, reverse("central:dataset", args=[dataset.pk]), detail))
    return [Section("Central copies", items, order=35)]
