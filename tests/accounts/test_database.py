import os

import pytest
from django.db import connection


@pytest.mark.django_db
def test_it_uses_the_configured_database():
    """In CI's PostgreSQL pass this proves the suite really talks to PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        assert connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            assert cursor.fetchone()[0].startswith("PostgreSQL")
    else:
        assert connection.vendor == "sqlite"
