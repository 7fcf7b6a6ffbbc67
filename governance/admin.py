"""Read-mostly admin views for support staff; every change goes through the portal's services."""

from django.contrib import admin

from .models import (
    AccessRequest,
    Agreement,
    AgreementParty,
    AgreementTemplate,
    Decision,
    Entitlement,
    Signature,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PartyInline(admin.TabularInline):
    model = AgreementParty
    extra = 0
    can_delete = False
    readonly_fields = ["organisation", "role"]


class SignatureInline(admin.TabularInline):
    model = Signature
    extra = 0
    can_delete = False
    readonly_fields = ["party", "user", "full_name", "signed_at", "ip_address", "document_sha256"]


@admin.register(AgreementTemplate)
class AgreementTemplateAdmin(ReadOnlyAdmin):
    list_display = ["kind", "version", "title", "created_at"]
    list_filter = ["kind"]


@admin.register(Agreement)
class AgreementAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "status", "effective_date", "expiry_date"]
    list_filter = ["kind", "status"]
    inlines = [PartyInline, SignatureInline]


class DecisionInline(admin.TabularInline):
    model = Decision
    extra = 0
    can_delete = False
    readonly_fields = ["custodian", "status", "reason", "decided_by", "decided_at"]


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "applicant", "organisation", "status", "created_at"]
    list_filter = ["status"]
    inlines = [DecisionInline]


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdmin):
    list_display = ["holder", "dataset", "access_mode", "status", "ends_at"]
    list_filter = ["status", "access_mode"]
