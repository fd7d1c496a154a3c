from django.apps import AppConfig


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "audit trail"

    def ready(self) -> None:
        from audit import receivers  # noqa: F401  (connects the signal receivers)
