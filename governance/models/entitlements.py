"""Entitlements: time-bound permission to use one dataset in one access mode."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# Access mode code → the guardian permission it grants on catalogue.Dataset (the catalogue's restrict
# reads them back for the actions of the same names).
from catalogue.models import PERMISSION_FOR_MODE as PERMISSION_FOR_MODE


class EntitlementStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class SuspensionReason(models.TextChoices):
    AGREEMENT_ENDED = "agreement_ended", "The agreement it rests on has ended"
    TERMS_CHANGED = "terms_changed", "The dataset's terms of use changed and must be accepted"


class Entitlement(models.Model):
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entitlements"
    )
    dataset = models.ForeignKey(
        "catalogue.Dataset", on_delete=models.CASCADE, related_name="entitlements"
    )
    access_mode = models.CharField(max_length=30)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(db_index=True)
    request = models.ForeignKey(
        "governance.AccessRequest", on_delete=models.PROTECT, related_name="entitlements"
    )
    agreement = models.ForeignKey(
        "governance.Agreement",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entitlements",
    )
    terms = models.ForeignKey(
        "catalogue.TermsOfUse", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=20,
        choices=EntitlementStatus.choices,
        default=EntitlementStatus.ACTIVE,
        db_index=True,
    )
    suspension_reason = models.CharField(
        max_length=20, choices=SuspensionReason.choices, blank=True
    )
    revoked_reason = models.TextField(blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ends_at", "pk"]
        indexes = [models.Index(fields=["holder", "access_mode", "status"])]

    def __str__(self) -> str:
        return f"{self.holder_id} → {self.dataset_id} ({self.access_mode}, {self.status})"

    def get_access_mode_display(self) -> str:
        from catalogue.models import AccessMode

        return dict(AccessMode.choices).get(self.access_mode, self.access_mode)

    @property
    def permission(self) -> str:
        return PERMISSION_FOR_MODE[self.access_mode]
