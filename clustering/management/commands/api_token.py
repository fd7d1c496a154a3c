from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clustering.tokens import TokenNameInvalid, api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what will use the token")

    def handle(self, *args, username: str, name: str, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        try:
            _token, secret = api_token_create(user=user, name=name)
        except TokenNameInvalid as problem:
            raise CommandError(str(problem)) from None
        self.stdout.write(secret)
        self.stderr.write(
            f"Token for {username} ({name}). It is shown only now; send it as "
            "'Authorization: Bearer <token>'."
        )
