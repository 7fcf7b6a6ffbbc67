from django.contrib.auth import views as auth_views
from django.urls import path

from . import notification_views, oidc_views, otp, recovery, views

app_name = "accounts"

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("accounts/login/", oidc_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", oidc_views.logout, name="logout"),
    path("accounts/oidc/<slug:key>/login/", oidc_views.oidc_start, name="oidc_login"),
    path("accounts/oidc/<slug:key>/callback/", oidc_views.oidc_callback, name="oidc_callback"),
    path("accounts/oidc/<slug:key>/link/", oidc_views.oidc_link, name="oidc_link"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(success_url="/accounts/password/change/done/"),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        auth_views.PasswordResetView.as_view(
            success_url="/accounts/password/reset/sent/",
            email_template_name="registration/password_reset_email.txt",
            html_email_template_name="registration/password_reset_email.html",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            success_url="/accounts/password/reset/complete/"
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/2fa/verify/", otp.verify, name="otp_verify"),
    path("accounts/2fa/enrol/", otp.enrol, name="otp_enrol"),
    path("accounts/2fa/recovery-codes/", recovery.recovery_codes_page, name="recovery_codes"),
    path("accounts/tokens/", views.api_tokens, name="api_tokens"),
    path("accounts/tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("organisations/", views.organisation_list, name="organisations"),
    path("organisations/<slug:slug>/", views.organisation_detail, name="organisation"),
    path("organisations/<slug:slug>/invite/", views.invitation_create, name="invitation_create"),
    path(
        "organisations/<slug:slug>/members/<int:user_id>/",
        views.membership_edit,
        name="membership_edit",
    ),
    path("notifications/", notification_views.notification_list, name="notifications"),
    path("notifications/count/", notification_views.notification_count, name="notification_count"),
    path(
        "notifications/read/",
        notification_views.notification_read_all,
        name="notifications_read_all",
    ),
    path(
        "notifications/<int:pk>/read/",
        notification_views.notification_read,
        name="notification_read",
    ),
    path("audit/", views.audit_trail, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
]
