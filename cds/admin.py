from django.contrib import admin

from .models import Evaluation, HookFeedback, Pathway, PathwayVersion


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are written by services (audited); the Django admin only looks."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Pathway)
class PathwayAdmin(ReadOnlyAdmin):
    list_display = ["slug", "title", "disease", "created_at"]
    search_fields = ["slug", "title"]


@admin.register(PathwayVersion)
class PathwayVersionAdmin(ReadOnlyAdmin):
    list_display = ["pathway", "version", "short_checksum", "status", "loaded_at", "activated_at"]
    list_filter = ["status", "pathway"]


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "pathway_version",
        "classification",
        "source",
        "user",
        "created_at",
        "opinion",
    ]
    list_filter = ["source", "opinion", "pathway_version__pathway"]
    list_select_related = ["pathway_version__pathway", "user"]


@admin.register(HookFeedback)
class HookFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["card_uuid", "outcome", "outcome_timestamp", "user", "created_at"]
    list_filter = ["outcome"]
