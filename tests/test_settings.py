"""Production settings: DEBUG off by default, no start on a missing or public secret key, HTTPS from the environment."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DJANGO_HTTPS": "true",
    "DJANGO_BEHIND_TLS_PROXY": "true",
    "DJANGO_ALLOWED_HOSTS": "refresh.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://refresh.example.com",
}


def manage(*args, **env):
    """manage.py with the real settings and only the given DJANGO_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        check=False,  # the tests look at the exit code and the output themselves
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**base, "DJANGO_SETTINGS_MODULE": "refresh_project.settings", **env},
        timeout=120,
    )


def test_debug_is_off_unless_asked_for():
    probe = "from django.conf import settings; print(settings.DEBUG)"
    assert manage("shell", "-c", probe, DJANGO_SECRET_KEY=secrets.token_urlsafe(50)).stdout.splitlines()[-1] == "False"
    assert manage("shell", "-c", probe, DJANGO_DEBUG="true").stdout.splitlines()[-1] == "True"


@pytest.mark.parametrize("key", [None, "dev-only-insecure-key-change-me", ""])
def test_with_debug_off_it_refuses_to_start_on_a_missing_or_public_key(key):
    env = {} if key is None else {"DJANGO_SECRET_KEY": key}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


def test_the_documented_production_environment_passes_the_deployment_checks():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_https_settings_the_deployment_checks_warn():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS
