from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.models import ImportRecord
from customers.services import UndoRefused, import_undo


class Command(BaseCommand):
    help = (
        "Undo a customer import: restore the values it changed and delete the customers it "
        "created. Without an ID, list the recent imports."
    )

    def add_arguments(self, parser):
        parser.add_argument("import_id", nargs="?", type=int, help="the import to undo")

    def handle(self, *args, **options):
        if options["import_id"] is None:
            for record in ImportRecord.objects.all()[:20]:
                state = f"undone {record.undone_at:%Y-%m-%d %H:%M}" if record.undone_at else ""
                self.stdout.write(
                    f"{record.id:>5}  {record.created_at:%Y-%m-%d %H:%M}  {record.file_name}  "
                    f"{record.created} created, {record.updated} updated  {state}"
                )
            return
        try:
            record = import_undo(record_id=options["import_id"])
        except ImportRecord.DoesNotExist:
            raise CommandError(f"There is no import {options['import_id']}.") from None
        except UndoRefused as problem:
            raise CommandError(str(problem)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Undid import {record.id}: {record.created} customer(s) deleted, "
                f"{record.updated} restored."
            )
        )
