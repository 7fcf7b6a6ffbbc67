from django.contrib import admin

from .models import CancerIndication, Dataset, DatasetVersion, Distribution, TermsOfUse


@admin.register(CancerIndication)
class CancerIndicationAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "parent", "sort_order")
    list_select_related = ("parent",)
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}


class DistributionInline(admin.TabularInline):
    model = Distribution
    extra = 0


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    # Lifecycle changes go through the services (audit, versions); admin is for inspection.
    list_display = ("title", "identifier", "publisher", "status", "current_version")
    list_filter = ("status", "publisher")
    search_fields = ("title", "identifier")
    readonly_fields = ("status", "current_version", "validation_report")
    inlines = [DistributionInline]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ("title", "number", "published_at", "is_listed")

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(TermsOfUse)
