from django.core.management.base import BaseCommand, CommandError

from accounts.models import User


class Command(BaseCommand):
    help = "Delete a user, as an admin removing an account would."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, required=True)

    def handle(self, *args, **opts):
        deleted, _ = User.objects.filter(pk=opts["id"]).delete()
        if deleted == 0:
            raise CommandError(f"no user with id {opts['id']}")
