from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.backends.signals import connection_created

        connection_created.connect(_sqlite_wal)


def _sqlite_wal(sender, connection, **kwargs):
    # WAL lets gunicorn's workers read while a management command writes.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
