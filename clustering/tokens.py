"""API tokens: created with a random secret shown once, stored as a sha256."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from clustering.models import ApiToken
from customers.csv_format import has_hidden_characters

TOKEN_PREFIX = "seg_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenNameInvalid(ValueError):
    """The name given for a token cannot be kept as it is; the message says why."""


def api_token_name_check(name: str) -> str:
    """The name as stored: stripped, not blank, within the column, no hidden characters."""
    limit = ApiToken._meta.get_field("name").max_length
    name = name.strip()
    if not name:
        raise TokenNameInvalid("the token needs a name saying what uses it")
    if len(name) > limit:
        raise TokenNameInvalid(
            f"the token's name is {len(name):,} characters long; keep it within {limit}"
        )
    if has_hidden_characters(name):
        raise TokenNameInvalid("the token's name contains a control or text-direction character")
    return name


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the record and the secret (not stored).
    TokenNameInvalid when the name is blank, too long or hides characters."""
    name = api_token_name_check(name)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:12], key_hash=token_hash(secret)
    )
    return token, secret


# Runs on every API call: one plain query, where the ORM's query building cost more than
# the prediction itself.
_TOKEN_SQL = """
SELECT t.id, t.last_used_at, u.id, u.username, u.is_superuser
FROM {token} t JOIN {user} u ON u.id = t.user_id
WHERE t.key_hash = %s AND t.revoked = %s AND u.is_active = %s
"""

# (user id, permission) -> (expires at, allowed). Revoking a token takes effect at once
# (the token is read on every call); a change of group or permission within this time.
_permissions: dict[tuple[int, str], tuple[float, bool]] = {}


def _user_from_row(user_id: int, username: str, is_superuser: bool):
    User = get_user_model()
    known = {"id": user_id, "username": username, "is_superuser": bool(is_superuser)}
    # from_db wants the values in the model's field order; other fields load on first use.
    names = [f.attname for f in User._meta.concrete_fields if f.attname in known]
    return User.from_db(connection.alias, names, [known[name] for name in names])


def user_allowed(user, permission: str) -> bool:
    """user.has_perm, remembered per process for API_PERMISSION_CACHE_SECONDS."""
    if user.is_superuser:
        return True
    now = time.monotonic()
    cached = _permissions.get((user.pk, permission))
    if cached and now < cached[0]:
        return cached[1]
    allowed = user.has_perm(permission)
    _permissions[(user.pk, permission)] = (now + settings.API_PERMISSION_CACHE_SECONDS, allowed)
    return allowed


def permission_cache_clear() -> None:
    _permissions.clear()


def api_token_user(secret: str, permission: str | None = None) -> tuple[object | None, bool]:
    """(user, allowed) for a bearer token: the active user it belongs to (or None) and
    whether that user has ``permission`` (always True when none is asked)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None, False
    sql = _TOKEN_SQL.format(token=ApiToken._meta.db_table, user=get_user_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [token_hash(secret), False, True])
        row = cursor.fetchone()
    if row is None:
        return None, False
    token_id, last_used_at, user_id, username, is_superuser = row
    now = timezone.now()
    # Written at most once a minute so that a busy integration does not write on every call.
    if last_used_at is None or (now - _aware(last_used_at)).total_seconds() > 60:
        ApiToken.objects.filter(id=token_id).update(last_used_at=now)
    user = _user_from_row(user_id, username, is_superuser)
    return user, permission is None or user_allowed(user, permission)


def _aware(value):
    if isinstance(value, str):  # SQLite returns text from a raw query
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
