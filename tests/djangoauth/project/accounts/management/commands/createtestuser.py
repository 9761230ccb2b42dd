from django.core.management.base import BaseCommand, CommandError

from accounts.management.migrated import require_migrated
from accounts.models import User


class Command(BaseCommand):
    help = "Create a user for tests and print its id."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--username", default=None)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument(
            "--services", default="", help="comma-separated service names"
        )
        parser.add_argument("--staff", action="store_true")
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--inactive", action="store_true")

    def handle(self, *args, **opts):
        require_migrated()
        if User.objects.filter(email__iexact=opts["email"]).exists():
            raise CommandError(f"a user with email {opts['email']!r} already exists")
        services = [s.strip() for s in opts["services"].split(",") if s.strip()]
        user = User.objects.create_user(
            opts["email"],
            opts["password"],
            username=opts["username"],
            first_name=opts["first_name"],
            last_name=opts["last_name"],
            services=services,
            is_staff=opts["staff"] or opts["superuser"],
            is_superuser=opts["superuser"],
            is_active=not opts["inactive"],
        )
        self.stdout.write(str(user.pk))
