from django.core.management.base import BaseCommand

from accounts.management.migrated import require_migrated
from accounts.models import User

# The quickstart's example users (tests/djangoauth/run.sh, README walk-through).
# Test passwords: the project hashes with MD5 and must never hold real accounts.
DEMO_USERS = [
    {"email": "alice@example.com", "password": "alice-password", "username": "alice",
     "services": ["billing"], "is_staff": False},
    {"email": "bob@example.com", "password": "bob-password", "username": "bob",
     "services": [], "is_staff": True},
]


class Command(BaseCommand):
    help = (
        "Create the quickstart's example users (alice: services [billing]; bob: staff). "
        "Safe to run again: existing users get their password, services and flags reset."
    )

    def handle(self, *args, **opts):
        require_migrated()
        for demo in DEMO_USERS:
            user = User.objects.filter(email__iexact=demo["email"]).first()
            if user is None:
                user = User(email=demo["email"])
            user.username = demo["username"]
            user.services = demo["services"]
            user.is_staff = demo["is_staff"]
            user.is_active = True
            user.set_password(demo["password"])
            user.save()
            role = "staff" if demo["is_staff"] else "services " + ",".join(demo["services"])
            self.stdout.write(
                f"user {user.pk}: {demo['email']} / {demo['password']} ({role})"
            )
