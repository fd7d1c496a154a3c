"""API tokens: created with a random secret shown once, stored as a sha256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from clustering.models import ApiToken

TOKEN_PREFIX = "seg_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the record and the secret (not stored)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:80], prefix=secret[:12], key_hash=token_hash(secret)
    )
    return token, secret


# One query for the token, its user and the permission: this runs on every API call,
# where building the equivalent ORM query cost more than the prediction itself.
_TOKEN_SQL = """
SELECT t.id, t.last_used_at, u.id, u.username, u.is_superuser,
  (u.is_superuser
   OR EXISTS (SELECT 1 FROM {user_perms} up
              JOIN {perm} p ON p.id = up.permission_id
              JOIN {ctype} ct ON ct.id = p.content_type_id
              WHERE up.user_id = u.id AND p.codename = %s AND ct.app_label = %s)
   OR EXISTS (SELECT 1 FROM {user_groups} ug
              JOIN {group_perms} gp ON gp.group_id = ug.group_id
              JOIN {perm} p ON p.id = gp.permission_id
              JOIN {ctype} ct ON ct.id = p.content_type_id
              WHERE ug.user_id = u.id AND p.codename = %s AND ct.app_label = %s))
FROM {token} t JOIN {user} u ON u.id = t.user_id
WHERE t.key_hash = %s AND t.revoked = %s AND u.is_active = %s
"""


def _token_sql() -> str:
    User = get_user_model()
    return _TOKEN_SQL.format(
        token=ApiToken._meta.db_table,
        user=User._meta.db_table,
        user_perms=User.user_permissions.through._meta.db_table,
        user_groups=User.groups.through._meta.db_table,
        group_perms=Group.permissions.through._meta.db_table,
        perm=Permission._meta.db_table,
        ctype=ContentType._meta.db_table,
    )


def api_token_user(secret: str, permission: str | None = None) -> tuple[object | None, bool]:
    """(user, allowed) for a bearer token: the active user it belongs to (or None) and
    whether that user has ``permission`` (always True when none is asked)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None, False
    app_label, _, codename = (permission or ".").partition(".")
    params = [codename, app_label, codename, app_label, token_hash(secret), False, True]
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    token_id, last_used_at, user_id, username, is_superuser, allowed = row
    now = timezone.now()
    # Written at most once a minute so that a busy integration does not write on every call.
    if last_used_at is None or (now - _aware(last_used_at)).total_seconds() > 60:
        ApiToken.objects.filter(id=token_id).update(last_used_at=now)
    User = get_user_model()
    # A user with the columns we read; any other field loads on first use.
    known = {"id": user_id, "username": username, "is_superuser": bool(is_superuser)}
    # from_db wants the values in the model's field order.
    names = [f.attname for f in User._meta.concrete_fields if f.attname in known]
    user = User.from_db(connection.alias, names, [known[name] for name in names])
    return user, bool(allowed) or permission is None


def _aware(value):
    if isinstance(value, str):  # SQLite returns text from a raw query
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
