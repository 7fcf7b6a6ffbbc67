from django.apps import AppConfig


class FederationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "federation"

    def ready(self) -> None:
        from accounts import extensions

        from . import catalogue_hooks

        extensions.provide(extensions.DATASET_NODE_CHOICES, catalogue_hooks.dataset_node_choices)
        extensions.provide(extensions.DATASET_NODE_CHOSEN, catalogue_hooks.dataset_node_chosen)
        extensions.provide(extensions.DATASET_PAGE_SECTION, catalogue_hooks.dataset_page_section)
