from django.core.management.base import BaseCommand, CommandError

from accounts.models import User

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class Command(BaseCommand):
    help = "Set a user's is_active flag."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, required=True)
        parser.add_argument("--active", required=True, help="true or false")

    def handle(self, *args, **opts):
        active = _BOOL.get(opts["active"].lower())
        if active is None:
            raise CommandError(f"--active must be true or false, got {opts['active']!r}")
        if User.objects.filter(pk=opts["id"]).update(is_active=active) != 1:
            raise CommandError(f"no user with id {opts['id']}")
