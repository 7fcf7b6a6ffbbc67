"""Federated learning: a FLARE training job (``federation.flare``), not runs on the nodes.

Its analysis row only names the job: the job's page, the abort and the release gate are FLARE's."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

CANCEL_REFUSAL = "Abort a federated-learning job on its page (or /api/fl-jobs/{id}/abort/)."


def page(analysis: Any) -> str | None:
    """The training job's page (the analysis page has no runs to show)."""
    if not hasattr(analysis, "fl_job"):
        return None
    return reverse("federation:fl_job", args=[analysis.fl_job.pk])
