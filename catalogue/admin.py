from django.contrib import admin

from . import search_index
from .models import CancerIndication, Dataset, DatasetVersion, Distribution, TermsOfUse


@admin.register(CancerIndication)
class CancerIndicationAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "parent", "sort_order")
    list_select_related = ("parent",)
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # A moved or new node changes which datasets each ancestor finds.
        search_index.rebuild()


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
