"""Uploaded CSV files waiting for the user's confirmation.

A file is stored under var/uploads/ by a random token that is also kept in
the uploader's session; only a token from the session is ever turned back
into a path, so no user-supplied path reaches the file system.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from django.conf import settings

SESSION_KEY = "pending_imports"
ABANDONED_AFTER_SECONDS = 24 * 3600


def upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_store(session, uploaded_file) -> str:
    _forget_abandoned()
    token = secrets.token_hex(16)
    with open(upload_dir() / f"{token}.csv", "wb") as out:
        for chunk in uploaded_file.chunks():
            out.write(chunk)
    pending = session.get(SESSION_KEY, [])
    for dropped in pending[:-4]:
        # The session keeps the last five uploads; older files could never be confirmed.
        (upload_dir() / f"{dropped}.csv").unlink(missing_ok=True)
    session[SESSION_KEY] = [*pending[-4:], token]
    return token


def _forget_abandoned() -> None:
    """Delete uploads nobody confirmed within a day: their sessions may be long gone."""
    cutoff = time.time() - ABANDONED_AFTER_SECONDS
    for path in upload_dir().glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass  # another request removed it first


def upload_path(session, token: str) -> Path | None:
    if token not in session.get(SESSION_KEY, []):
        return None
    path = upload_dir() / f"{token}.csv"
    return path if path.exists() else None


def upload_discard(session, token: str) -> None:
    path = upload_path(session, token)
    if path:
        path.unlink(missing_ok=True)
    session[SESSION_KEY] = [t for t in session.get(SESSION_KEY, []) if t != token]
