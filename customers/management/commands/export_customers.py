from __future__ import annotations

from django.core.management.base import BaseCommand

from customers.services import customers_export_lines


class Command(BaseCommand):
    help = "Export all customers as CSV in the format import_customers reads."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, **options):
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                out.writelines(customers_export_lines())
        else:
            # self.stdout, not sys.stdout, so that call_command(stdout=...) captures it.
            for line in customers_export_lines():
                self.stdout.write(line, ending="")
