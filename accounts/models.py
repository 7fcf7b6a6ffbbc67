"""Organisations, memberships with roles, invitations, personal API tokens, the audit trail,
notifications, TOTP recovery codes and federated (OpenID Connect) identities."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify
from django_countries.fields import CountryField
from django_otp.models import Device, ThrottlingMixin

from .hashing import hash_token, normalise_recovery_code, recovery_code_digest
from .roles import roles_by_org


class OrganisationKind(models.TextChoices):
    HOSPITAL = "hospital", "Hospital / data provider"
    RESEARCH = "research", "Research institute"
    INDUSTRY = "industry", "Industry"
    PATIENT_ORG = "patient_org", "Patient organisation"
    PLATFORM = "platform", "Platform operator"


class Role(models.TextChoices):
    DATA_STEWARD = "data_steward", "Data steward"
    DAC_MEMBER = "dac_member", "Data access committee member"
    RESEARCHER = "researcher", "Researcher"
    SITE_ADMIN = "site_admin", "Site administrator"
    SIGNATORY = "signatory", "Signatory"
    ORG_ADMIN = "org_admin", "Organisation administrator"
    CURATOR = "curator", "Catalogue curator"
    CLINICIAN = "clinician", "Clinician"


ror_validator = RegexValidator(
    r"^0[a-hj-km-np-tv-z0-9]{6}[0-9]{2}$",
    "A ROR identifier has nine characters, e.g. 05f950310 (without https://ror.org/).",
)


class Organisation(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    country = CountryField(help_text="ISO 3166-1 country")
    kind = models.CharField(max_length=20, choices=OrganisationKind.choices)
    ror_id = models.CharField(
        "ROR identifier", max_length=9, blank=True, validators=[ror_validator]
    )
    is_test_site = models.BooleanField("implementation test site", default=False)
    time_zone = models.CharField(max_length=64, default="Europe/Brussels")
    website = models.URLField(blank=True)
    designated_committees = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="committee_for",
        help_text="Other organisations whose data access committee may decide on this "
        "organisation's datasets (its own committee always may).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:80]
        super().save(*args, **kwargs)

    @property
    def ror_url(self) -> str:
        return f"https://ror.org/{self.ror_id}" if self.ror_id else ""

    def designates(self, committee: Organisation | int | None) -> bool:
        """May ``committee``'s DAC decide on this organisation's datasets? Its own, or designated."""
        if committee is None:
            return True
        committee_id = committee if isinstance(committee, int) else committee.pk
        return (
            committee_id == self.pk or self.designated_committees.filter(pk=committee_id).exists()
        )

    def committees(self) -> models.QuerySet:
        """The organisations whose committee may decide on this organisation's datasets."""
        return Organisation.objects.filter(
            models.Q(pk=self.pk) | models.Q(committee_for=self)
        ).distinct()


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_membership_per_org")
        ]
        ordering = ["organisation__name"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organisation}"

    @property
    def role_names(self) -> list[str]:
        return sorted(r.name for r in self.roles.all())


class MembershipRole(models.Model):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["membership", "name"], name="one_role_once")]

    def __str__(self) -> str:
        return self.name


class Invitation(models.Model):
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    roles = models.JSONField(default=list)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organisation_id}"

    @staticmethod
    def new_token() -> tuple[str, str]:
        raw = secrets.token_urlsafe(32)
        return raw, hash_token(raw)

    @classmethod
    def find(cls, raw: str) -> Invitation | None:
        return cls.objects.filter(token_hash=hash_token(raw)).select_related("organisation").first()

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()

    @staticmethod
    def default_expiry():
        return timezone.now() + timedelta(days=14)


class ApiToken(models.Model):
    """A personal API token: shown once, stored as a SHA-256 hash.

    ``scope`` is what its owner held when it was issued (see :meth:`scope_of`). A token acts only
    while the owner's current scope stays within it, so roles granted later never flow into an
    old token; ``None`` (tokens issued before scopes were recorded) covers nothing.
    """

    PREFIX_LEN = 8

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LEN, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scope = models.JSONField(
        null=True,
        blank=True,
        help_text="Roles (organisation id:role) and staff status held when the token was issued.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def scope_of(user) -> list[str]:
        """Everything that widens what a person may do: staff status and each role in each org."""
        held = [
            f"{org_id}:{role}" for org_id, roles in roles_by_org(user).items() for role in roles
        ]
        if user.is_staff:
            held.append("staff")
        if user.is_superuser:
            held.append("superuser")
        return sorted(held)

    def covers(self, scope: list[str]) -> bool:
        return self.scope is not None and set(scope) <= set(self.scope)

    @classmethod
    def issue(cls, *, user, name: str, expires_at=None) -> tuple[ApiToken, str]:
        raw = "opt_" + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            prefix=raw[: cls.PREFIX_LEN],
            token_hash=hash_token(raw),
            expires_at=expires_at,
            scope=cls.scope_of(user),
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        token = cls.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if token is None or not token.is_active or not token.user.is_active:
            return None
        return token

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A person's set of TOTP recovery codes, a django-otp device so a code verifies the session.

    Each code is stored as HMAC-SHA256 under its own random salt (``RecoveryCode``); a code
    verifies once. Regenerating deletes the old codes. Failed attempts are throttled like TOTP.
    """

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        code = normalise_recovery_code(str(token))
        for candidate in self.codes.filter(used_at__isnull=True):
            if candidate.matches(code):
                # A conditional update: two requests racing with one code cannot both win.
                used = RecoveryCode.objects.filter(pk=candidate.pk, used_at__isnull=True).update(
                    used_at=timezone.now()
                )
                if used:
                    self.throttle_reset()
                    return True
        self.throttle_increment()
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code {self.pk} of device {self.device_id}"

    def matches(self, code: str) -> bool:
        return secrets.compare_digest(self.digest, recovery_code_digest(self.salt, code))


class FederatedIdentity(Device):
    """An account at an OpenID Connect provider, linked by (issuer, subject), never by e-mail.

    Also a django-otp device: a login whose ID token asserts multi-factor authentication
    (``acr``/``amr``) marks the session verified through it. It never accepts a typed code.
    """

    provider = models.CharField(max_length=40)
    issuer = models.URLField(max_length=300)
    subject = models.CharField(max_length=255)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="federated_identity_unique")
        ]

    def verify_token(self, token) -> bool:
        return False


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError("Audit events are append-only.")

    def delete(self):
        raise ValidationError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One link of the tamper-evident audit chain. Written only through ``accounts.audit.record``."""

    seq = models.PositiveBigIntegerField(unique=True)
    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_repr = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    payload = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValidationError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """A single row naming the newest event: a lock for linear appends and a check on truncation."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class WorkerHeartbeat(models.Model):
    """Written by a periodic Celery task, so /readyz and the tests can see a worker really runs."""

    name = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"


class Notification(models.Model):
    """One message to one person: listed in-app, and e-mailed when ``email`` is set.

    Written only through ``accounts.notifications.notify``. The row is the truth of the e-mail too:
    ``sent_at`` once it went out, ``attempts`` and the last ``error`` while it did not.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    verb = models.CharField(max_length=60, db_index=True)
    subject = models.CharField(max_length=250)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email = models.BooleanField(default=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "read_at"]),
            models.Index(
                fields=["created_at"],
                name="accounts_notification_unsent",
                condition=models.Q(email=True, sent_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verb} → {self.recipient_id}"
