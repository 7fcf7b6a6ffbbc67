from django.urls import path

from . import export_views, views

app_name = "catalogue"

urlpatterns = [
    path("", views.search, name="search"),
    path("new/", views.create, name="create"),
    path("mine/", views.mine, name="mine"),
    path("review/", views.review, name="review"),
    path("dcat", export_views.catalogue_negotiated, name="dcat"),
    path("dcat.<str:fmt>", export_views.catalogue_export, name="dcat_format"),
    path("datasets/<str:identifier>/", views.detail, name="detail"),
    path("datasets/<str:identifier>/edit/", views.edit, name="edit"),
    path("datasets/<str:identifier>/submit/", views.submit, name="submit"),
    path(
        "datasets/<str:identifier>/request-changes/", views.request_changes, name="request_changes"
    ),
    path("datasets/<str:identifier>/publish/", views.publish, name="publish"),
    path("datasets/<str:identifier>/retire/", views.retire, name="retire"),
    path(
        "datasets/<str:identifier>/update-interval/",
        views.update_interval,
        name="update_interval",
    ),
    path("datasets/<str:identifier>/versions/", views.versions, name="versions"),
    path(
        "datasets/<str:identifier>/versions/<int:number>/restore/",
        views.restore,
        name="restore",
    ),
    path("datasets/<str:identifier>/dcat.ttl", export_views.dataset_ttl, name="dataset_ttl"),
    path("datasets/<str:identifier>/dcat.<str:fmt>", export_views.dataset_rdf, name="dataset_rdf"),
    path("ns", export_views.namespace, name="namespace"),
]
