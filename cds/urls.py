from django.urls import path

from . import views

app_name = "cds"

urlpatterns = [
    path("", views.home, name="home"),
    path("pathways/<slug:slug>/", views.pathway_page, name="pathway"),
    path("pathways/<slug:slug>/evaluate/", views.evaluate, name="evaluate"),
    path("pathways/<slug:slug>/save/", views.evaluation_save, name="evaluation_save"),
    path("evaluations/<uuid:pk>/", views.evaluation_page, name="evaluation"),
    path("evaluations/<uuid:pk>/opinion/", views.evaluation_opinion, name="evaluation_opinion"),
    path(
        "evaluations/<uuid:pk>/tumour-board.pdf",
        views.evaluation_tumour_board_pdf,
        name="evaluation_tumour_board_pdf",
    ),
    path(
        "evaluations/<uuid:pk>/patient.pdf",
        views.evaluation_patient_pdf,
        name="evaluation_patient_pdf",
    ),
    path("manage/", views.manage, name="manage"),
    path("manage/<slug:slug>/diff/", views.manage_diff, name="manage_diff"),
    path("manage/versions/<int:pk>/activate/", views.manage_activate, name="manage_activate"),
    path("manage/versions/<int:pk>/retire/", views.manage_retire, name="manage_retire"),
]
