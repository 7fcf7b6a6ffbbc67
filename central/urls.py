from django.urls import path

from . import views

app_name = "central"

urlpatterns = [
    path("", views.index, name="index"),
    path("datasets/<int:pk>/", views.dataset, name="dataset"),
    path("uploads/<int:pk>/", views.upload, name="upload"),
    path("uploads/<int:pk>/report.json", views.report_json, name="report_json"),
    path("uploads/<int:pk>/report.csv", views.report_csv, name="report_csv"),
    path("versions/<int:pk>/retire/", views.retire, name="retire"),
    path("datasets/<int:pk>/policy/", views.policy, name="policy"),
    path("node/", views.node, name="node"),
    path("node/enrol/", views.node_enrol, name="node_enrol"),
    path("node/revoke/", views.node_revoke, name="node_revoke"),
]
