from django.apps import AppConfig


class CdsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cds"
