from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("", views.item_list, name="list"),
    path("new/", views.item_new, name="new"),
    path("widget/", views.widget, name="widget"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("export.csv", views.export_csv, name="export"),
    path("cds/<str:pathway_id>/", views.cds_disagreements, name="cds_disagreements"),
    path("<int:pk>/", views.item_detail, name="detail"),
    path("<int:pk>/edit/", views.item_edit, name="edit"),
    path("<int:pk>/comments/", views.comment_create, name="comment"),
    path("<int:pk>/vote/", views.vote, name="vote"),
    path("<int:pk>/attachments/", views.attachment_create, name="attach"),
    path(
        "<int:pk>/attachments/<int:attachment_pk>/",
        views.attachment_download,
        name="attachment",
    ),
    path("<int:pk>/<str:name>/", views.item_transition, name="transition"),
]
