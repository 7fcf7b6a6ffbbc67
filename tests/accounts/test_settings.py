import os
import subprocess
import sys

from django.conf import settings

ROOT = settings.BASE_DIR


def _run(args, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "DEBUG",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
            "AUDIT_HMAC_KEY",
        }
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_refuses_to_start_without_a_secret_key_in_production():
    result = _run(["check"], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_refuses_to_start_without_an_audit_key_in_production(tmp_path):
    result = _run(["check"], DEBUG="0", SECRET_KEY="k" * 64, OPTIMA_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "AUDIT_HMAC_KEY is not set" in result.stderr
    short = _run(
        ["check"],
        DEBUG="0",
        SECRET_KEY="k" * 64,
        AUDIT_HMAC_KEY="short",
        OPTIMA_VAR_DIR=str(tmp_path),
    )
    assert short.returncode != 0 and "AUDIT_HMAC_KEY is too short" in short.stderr


def test_check_deploy_is_silent_with_production_settings(tmp_path):
    result = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        AUDIT_HMAC_KEY="audit-" + "z" * 58,
        SECRET_KEY="x" * 20 + "a-very-long-and-random-production-secret-key-0123456789",
        ALLOWED_HOSTS="portal.example.org",
        SECURE_HTTPS="1",
        CACHE_URL="redis://127.0.0.1:6379/1",  # rate limits need a cache shared by workers
        CENTRAL_UPLOAD_KEY="Y2VudHJhbC11cGxvYWQta2V5LTMyLWJ5dGVzLWxvbmc=",  # 32 bytes, base64
        OPTIMA_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_about_a_per_process_cache(tmp_path):
    result = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY="x" * 20 + "a-very-long-and-random-production-secret-key-0123456789",
        ALLOWED_HOSTS="portal.example.org",
        SECURE_HTTPS="1",
        AUDIT_HMAC_KEY="audit-" + "z" * 58,
        CACHE_URL="",  # the in-process default
        OPTIMA_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "accounts.W001" in result.stdout + result.stderr


def test_secrets_may_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("file-secret-" + "y" * 60)
    audit_key = tmp_path / "audit-key"
    audit_key.write_text("audit-key-" + "w" * 60)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='optima_portal.settings';"
            "from django.conf import settings;print(settings.SECRET_KEY, settings.AUDIT_HMAC_KEY)",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "AUDIT_HMAC_KEY"}},
            "DEBUG": "0",
            "SECRET_KEY_FILE": str(secret),
            "AUDIT_HMAC_KEY_FILE": str(audit_key),
            "OPTIMA_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"file-secret-{'y' * 60} audit-key-{'w' * 60}", result.stderr


def test_the_wsgi_application_loads_every_view_before_its_first_request():
    """A server process must not spend its first request importing the URLconf (scipy included)."""
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    probe = (
        "import sys; import optima_portal.wsgi; "
        "print(all(m in sys.modules for m in "
        "('optima_portal.urls', 'federation.node_api', 'federation.stats', 'scipy.stats')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
