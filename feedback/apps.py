from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"

    def ready(self) -> None:
        from accounts import extensions

        from .services import cds_disagreement_record

        # CDS asks for this by name: cds and feedback do not import each other.
        extensions.provide(extensions.CDS_DISAGREEMENT, cds_disagreement_record)
