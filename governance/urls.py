from django.urls import path
from django.views.generic import RedirectView

from .views import agreements, entitlements, home, public, requests

app_name = "governance"

urlpatterns = [
    path("", home.home, name="home"),
    # Basket and access requests
    path("basket/", requests.basket, name="basket"),
    path("basket/add/", requests.basket_add, name="basket_add"),
    path("basket/remove/", requests.basket_remove, name="basket_remove"),
    path("requests/", requests.request_list, name="requests"),
    path("requests/new/", requests.request_create, name="request_create"),
    path("requests/<int:pk>/", requests.request_detail, name="request_detail"),
    path("requests/<int:pk>/edit/", requests.request_edit, name="request_edit"),
    path("requests/<int:pk>/submit/", requests.request_submit, name="request_submit"),
    path("requests/<int:pk>/withdraw/", requests.request_withdraw, name="request_withdraw"),
    path(
        "requests/<int:pk>/decisions/<int:custodian_id>/<slug:action>/",
        requests.decision_action,
        name="decision_action",
    ),
    path(
        "requests/<int:pk>/comments/<int:custodian_id>/",
        requests.comment_create,
        name="comment_create",
    ),
    path("requests/<int:pk>/attachments/", requests.attachment_upload, name="attachment_upload"),
    path("attachments/<int:pk>/", requests.attachment_download, name="attachment_download"),
    # Entitlements
    path("entitlements/", entitlements.entitlement_list, name="entitlements"),
    path(
        "entitlements/<int:pk>/revoke/", entitlements.entitlement_revoke, name="entitlement_revoke"
    ),
    path(
        "entitlements/<int:pk>/accept-terms/",
        entitlements.entitlement_accept_terms,
        name="entitlement_accept_terms",
    ),
    path("entitlements/<int:pk>/renew/", entitlements.entitlement_renew, name="entitlement_renew"),
    # Agreements
    path("agreements/", agreements.agreement_list_view, name="agreements"),
    path("agreements/new/", agreements.agreement_create, name="agreement_create"),
    path("agreements/<int:pk>/", agreements.agreement_detail, name="agreement_detail"),
    path("agreements/<int:pk>/edit/", agreements.agreement_edit, name="agreement_edit"),
    path("agreements/<int:pk>/send/", agreements.agreement_send, name="agreement_send"),
    path("agreements/<int:pk>/sign/", agreements.agreement_sign, name="agreement_sign"),
    path(
        "agreements/<int:pk>/terminate/", agreements.agreement_terminate, name="agreement_terminate"
    ),
    path(
        "agreements/<int:pk>/new-version/",
        agreements.agreement_new_version,
        name="agreement_new_version",
    ),
    path(
        "agreements/<int:pk>/<str:which>.pdf",
        agreements.agreement_document,
        name="agreement_document",
    ),
    path("templates/", agreements.template_list, name="templates"),
    path("templates/new/", agreements.template_create, name="template_create"),
    path("templates/defaults/", agreements.template_defaults, name="template_defaults"),
    # Notifications moved to /notifications/ (accounts): the old addresses redirect there.
    path(
        "notifications/",
        RedirectView.as_view(pattern_name="accounts:notifications", query_string=True),
        name="notifications",
    ),
    path(
        "notifications/count/",
        RedirectView.as_view(pattern_name="accounts:notification_count"),
        name="notification_count",
    ),
    # Transparency (public)
    path("register/", public.register, name="register"),
    path("statistics/", public.custodian_statistics, name="statistics"),
]
