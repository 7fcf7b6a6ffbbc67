from django.apps import AppConfig


class CentralConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "central"
    verbose_name = "Central copies"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the system checks)
