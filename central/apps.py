from django.apps import AppConfig


class CentralConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "central"
    verbose_name = "Central copies"
