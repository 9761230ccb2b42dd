"""A clear error for management commands run before `manage.py migrate`."""
from django.core.management.base import CommandError
from django.db import connection


def require_migrated():
    """Raise CommandError, not a traceback, when the users table is missing."""
    if "accounts_user" not in connection.introspection.table_names():
        raise CommandError(
            "the database has no tables yet: run `/usr/bin/python3 manage.py migrate` first "
            f"(DJANGOAUTH_DB={connection.settings_dict['NAME']})"
        )
