from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the first admin account with a generated password, printed once. "
        "Does nothing when a superuser already exists (there is no default password)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already; password unchanged.")
            return
        password = secrets.token_urlsafe(12)
        # An address, so that `make run` prints the managers' notifications (console email).
        User.objects.create_superuser(username=username, email="admin@localhost", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Admin account created (shown once, write it down):\n"
                f"    username: {username}\n    password: {password}\n"
            )
        )
