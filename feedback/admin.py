from django.contrib import admin

from .models import Attachment, Comment, FeedbackItem, Label, Vote


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    readonly_fields = ["author", "organisation", "body", "created_at"]


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    readonly_fields = ["original_name", "content_type", "size", "sha256", "uploaded_by"]
    exclude = ["file"]


@admin.register(FeedbackItem)
class FeedbackItemAdmin(admin.ModelAdmin):
    """Read-mostly: workflow changes go through the portal so that they are audited."""

    list_display = ["pk", "title", "site", "category", "component", "status", "created_at"]
    list_filter = ["status", "category", "component", "site", "shared"]
    search_fields = ["title", "description"]
    readonly_fields = [f.name for f in FeedbackItem._meta.concrete_fields]
    inlines = [CommentInline, AttachmentInline]

    def has_add_permission(self, request):
        return False


admin.site.register(Label)


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["item", "user", "created_at"]
