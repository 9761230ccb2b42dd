"""WSGI entry point, served by gunicorn in tests."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoauth_project.settings")

application = get_wsgi_application()
