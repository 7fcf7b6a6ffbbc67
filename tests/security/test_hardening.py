"""Hardened settings: what a production process runs with, the headers every page carries, no
inline scripts or styles in any template, lock-out after repeated failed logins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

ROOT = Path(settings.BASE_DIR)
PROBE = (
    "import os, json, django; os.environ['DJANGO_SETTINGS_MODULE']='optima_portal.settings';"
    "django.setup(); from django.conf import settings as s;"
    "print(json.dumps({k: getattr(s, k) for k in ["
    "'DEBUG','SESSION_COOKIE_SECURE','CSRF_COOKIE_SECURE','SESSION_COOKIE_HTTPONLY',"
    "'CSRF_COOKIE_HTTPONLY','SECURE_SSL_REDIRECT','SECURE_HSTS_SECONDS',"
    "'SECURE_HSTS_INCLUDE_SUBDOMAINS','SECURE_CONTENT_TYPE_NOSNIFF','SECURE_REFERRER_POLICY',"
    "'X_FRAME_OPTIONS','SESSION_COOKIE_AGE','SESSION_IDLE_TIMEOUT','OTP_ENFORCED',"
    "'AXES_ENABLED','AXES_FAILURE_LIMIT','MEDIA_URL','UPLOAD_MAX_BYTES',"
    "'DATA_UPLOAD_MAX_MEMORY_SIZE']}))"
)


def _production_settings(tmp_path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "OTP_ENFORCED"}
        and not k.startswith(("PYTEST", "SECURE_", "SESSION_"))
    }
    env.update(
        DEBUG="0", SECRET_KEY="s" * 64, AUDIT_HMAC_KEY="a" * 64, OPTIMA_VAR_DIR=str(tmp_path)
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_defaults_are_the_hardened_ones(tmp_path):
    s = _production_settings(tmp_path)
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SESSION_COOKIE_HTTPONLY"] and s["CSRF_COOKIE_HTTPONLY"]
    assert s["SECURE_SSL_REDIRECT"]
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert s["SECURE_REFERRER_POLICY"] == "same-origin"
    assert s["X_FRAME_OPTIONS"] == "DENY"
    assert s["SESSION_COOKIE_AGE"] <= 12 * 3600
    assert 0 < s["SESSION_IDLE_TIMEOUT"] <= 3600
    assert s["OTP_ENFORCED"] is True
    assert s["AXES_ENABLED"] and s["AXES_FAILURE_LIMIT"] <= 10
    assert s["MEDIA_URL"] == "/media-not-public/"
    assert s["UPLOAD_MAX_BYTES"] <= 50 * 1024 * 1024


@pytest.mark.django_db
def test_every_page_carries_a_csp_without_inline_scripts_and_the_framing_headers(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True)
def test_https_answers_carry_hsts(client):
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_is_redirected_to_https_except_health_checks(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_cookies_are_secure_httponly_and_samesite(client, researcher):
    researcher.set_password("correct-horse-battery-9")
    researcher.save()
    client.get("/accounts/login/", secure=True)
    response = client.post(
        "/accounts/login/",
        {"username": researcher.username, "password": "correct-horse-battery-9"},
        secure=True,
    )
    cookie = response.cookies["sessionid"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["secure"]


TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)


def test_no_template_has_inline_scripts_handlers_or_styles():
    problems = []
    for directory in TEMPLATE_DIRS:
        for path in directory.rglob("*.html"):
            text = path.read_text()
            for name, pattern in (
                ("inline <script>", INLINE_SCRIPT),
                ("inline event handler", INLINE_HANDLER),
                ("inline style", INLINE_STYLE),
            ):
                for match in pattern.finditer(text):
                    # PDF templates are rendered by WeasyPrint, never served to a browser.
                    if "pdf" in path.name or "/pdf/" in str(path) or "report" in path.name:
                        continue
                    line = text.count("\n", 0, match.start()) + 1
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account_even_with_the_right_password(
    client, researcher, settings
):
    settings.AXES_ENABLED = True
    researcher.set_password("correct-horse-battery-9")
    researcher.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": researcher.username, "password": "wrong"})
    locked = client.post(
        "/accounts/login/",
        {"username": researcher.username, "password": "correct-horse-battery-9"},
    )
    assert locked.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
