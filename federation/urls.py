from django.urls import path

from . import link_views, views
from .flare import views as fl_views

app_name = "federation"

urlpatterns = [
    path("", views.home, name="home"),
    path("analyses/new/", views.analysis_create, name="analysis_create"),
    path("analyses/<int:pk>/", views.analysis_detail, name="analysis"),
    path("analyses/<int:pk>/cancel/", views.analysis_cancel, name="analysis_cancel"),
    path("analyses/<int:pk>/result.csv", views.analysis_csv, name="analysis_csv"),
    path("analyses/<int:pk>/result.json", views.analysis_json, name="analysis_json"),
    path("analyses/<int:pk>/report.pdf", views.analysis_pdf, name="analysis_pdf"),
    path("datasets/<int:pk>/refresh-metadata/", views.dataset_refresh, name="dataset_refresh"),
    path("datasets/<int:pk>/serve/", link_views.dataset_serve, name="dataset_serve"),
    path("datasets/<int:pk>/profile/", views.dataset_profile_request, name="dataset_profile"),
    path(
        "analyses/<int:pk>/attach-profile/",
        views.analysis_profile_attach,
        name="analysis_profile_attach",
    ),
    path("nodes/", views.node_list, name="nodes"),
    path("nodes/register/", views.node_register, name="node_register"),
    path("nodes/<int:pk>/", views.node_detail, name="node"),
    path("nodes/<int:pk>/approve/", views.node_approve, name="node_approve"),
    path("nodes/<int:pk>/rotate/", views.node_rotate, name="node_rotate"),
    path(
        "nodes/<int:pk>/confirm-identity/",
        views.node_confirm_identity,
        name="node_confirm_identity",
    ),
    path("nodes/<int:pk>/revoke/", views.node_revoke, name="node_revoke"),
    path("nodes/<int:pk>/datasets/", views.node_datasets, name="node_datasets"),
    path(
        "nodes/<int:pk>/datasets/<int:link>/confirm/",
        link_views.node_dataset_confirm,
        name="node_dataset_confirm",
    ),
    path("review/", views.review_queue, name="review"),
    path("runs/<int:pk>/approve/", views.run_approve, name="run_approve"),
    path("runs/<int:pk>/release/", views.run_release, name="run_release"),
    path("runs/<int:pk>/decline/", views.run_decline, name="run_decline"),
    # Federated learning on NVIDIA FLARE
    path("learning/", fl_views.home, name="fl_home"),
    path("learning/new/", fl_views.create, name="fl_create"),
    path("learning/<int:pk>/", fl_views.detail, name="fl_job"),
    path("learning/<int:pk>/abort/", fl_views.abort, name="fl_abort"),
    path("learning/<int:pk>/release/", fl_views.release, name="fl_release"),
    path("learning/<int:pk>/decline/", fl_views.decline, name="fl_decline"),
    path("models/", fl_views.model_list, name="models"),
    path("models/<int:pk>/", fl_views.model_detail, name="model"),
    path("models/<int:pk>/download.json", fl_views.model_download, name="model_download"),
    path("models/<int:pk>/card.md", fl_views.model_card, name="model_card"),
]
