from django.contrib import admin

from .models import (
    ApiToken,
    AuditEvent,
    Invitation,
    Membership,
    MembershipRole,
    Notification,
    Organisation,
)


class MembershipRoleInline(admin.TabularInline):
    model = MembershipRole
    extra = 1


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "kind", "is_test_site", "ror_id"]
    list_filter = ["kind", "is_test_site", "country"]
    search_fields = ["name", "ror_id"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["designated_committees"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role_names"]
    list_filter = ["organisation"]
    inlines = [MembershipRoleInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "created_at", "expires_at", "accepted_at"]
    exclude = ["token_hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    exclude = ["token_hash"]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = [
        "seq",
        "timestamp",
        "actor_repr",
        "action",
        "object_type",
        "object_id",
        "organisation",
    ]
    list_filter = ["action"]
    search_fields = ["action", "actor_repr", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only: rows are written by ``accounts.notifications.notify`` and driven by its tasks."""

    list_display = ["verb", "recipient", "subject", "created_at", "read_at", "sent_at", "attempts"]
    list_filter = ["verb", "email"]
    search_fields = ["subject", "recipient__username"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
