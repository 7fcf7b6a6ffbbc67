#!/usr/bin/env python
"""A real OpenID Connect provider for the portal's tests (django-oauth-toolkit), run as its own
process by tests/browser/oidc.py: ``manage.py migrate``, ``manage.py setup_provider``,
``manage.py runserver 127.0.0.1:PORT``. Configured only by OIDC_TEST_* variables."""

import os
import sys

if __name__ == "__main__":
    os.environ["DJANGO_SETTINGS_MODULE"] = "provider.settings"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
