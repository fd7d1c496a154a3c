"""Uploaded CSV files waiting for the user's confirmation.

A file is stored under var/uploads/ by a random token that is also kept in
the uploader's session; only a token from the session is ever turned back
into a path, so no user-supplied path reaches the file system.

A file's suffix says where it is in its life: ``.partial`` while the upload request
checks it, ``.csv`` while it waits for the user, ``.importing`` while a confirm imports
it. Renaming is atomic, so of several simultaneous confirms exactly one claims the file.
A ``.partial`` or ``.importing`` file older than any request can run belongs to a request
that was killed, and is deleted by the next upload.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from django.conf import settings

SESSION_KEY = "pending_imports"
ABANDONED_AFTER_SECONDS = 24 * 3600
# No request of the site runs this long (gunicorn's timeout is 60 s): a file still being
# checked or imported after it belongs to a request that was killed.
IN_FLIGHT_MAX_SECONDS = 600
CHECKING, WAITING, IMPORTING = "partial", "csv", "importing"
FILE_NAME_MAX_LENGTH = 255  # a file's name as the pages show it


def upload_dir() -> Path:
    path = Path(settings.VAR_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file(token: str, state: str) -> Path:
    return upload_dir() / f"{token}.{state}"


def upload_store(session, uploaded_file) -> str:
    """Store an upload for checking (``upload_keep`` makes it wait for a confirm)."""
    _forget_abandoned()
    token = secrets.token_hex(16)
    with open(_file(token, CHECKING), "wb") as out:
        for chunk in uploaded_file.chunks():
            out.write(chunk)
    pending = session.get(SESSION_KEY, [])
    for dropped in pending[:-4]:
        # The session keeps the last five uploads; older files could never be confirmed.
        _remove(dropped)
    session[SESSION_KEY] = [*pending[-4:], token]
    return token


def upload_keep(token: str) -> None:
    """The checked upload waits for the user's confirmation."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(_file(token, CHECKING), _file(token, WAITING))


def _forget_abandoned() -> None:
    """Delete uploads nobody confirmed within a day (their sessions may be long gone), and
    files of requests that were killed while checking or importing them."""
    now = time.time()
    for path in upload_dir().iterdir():
        limit = ABANDONED_AFTER_SECONDS if path.suffix == f".{WAITING}" else IN_FLIGHT_MAX_SECONDS
        try:
            if path.stat().st_mtime < now - limit:
                path.unlink()
        except FileNotFoundError:
            pass  # another request removed it first


def upload_path(session, token: str) -> Path | None:
    """The stored file of a token of this session, while it is checked or waits."""
    if token not in session.get(SESSION_KEY, []):
        return None
    for state in (WAITING, CHECKING):
        path = _file(token, state)
        if path.exists():
            return path
    return None


def upload_known(session, token: str) -> bool:
    return token in session.get(SESSION_KEY, [])


def upload_claim(session, token: str) -> Path | None:
    """Take a waiting upload for its import. Only one of several simultaneous confirms
    gets the file; the others get None (it is being imported, or was)."""
    if not upload_known(session, token):
        return None
    claimed = _file(token, IMPORTING)
    try:
        os.rename(_file(token, WAITING), claimed)
    except FileNotFoundError:
        return None
    os.utime(claimed)  # the import starts now, however long the file waited
    return claimed


def upload_release(token: str) -> None:
    """The import asked for a confirmation first: the upload waits again."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(_file(token, IMPORTING), _file(token, WAITING))


def _remove(token: str) -> None:
    for state in (CHECKING, WAITING, IMPORTING):
        _file(token, state).unlink(missing_ok=True)


def upload_discard(session, token: str) -> None:
    if upload_known(session, token):
        _remove(token)
    session[SESSION_KEY] = [t for t in session.get(SESSION_KEY, []) if t != token]


def upload_first_step(
    request, form, first_step, *, waiting: tuple[str, ...], refused: tuple[type, ...]
) -> dict:
    """Store a valid upload form's file, run ``first_step(request, upload)`` (the importer's
    column step or report, a context dict) and keep the file only when that context has
    something for the user to do next (any of the ``waiting`` keys). A ``refused`` error
    becomes the form's message on the file. Whatever ends the request (a refusal, an
    error, a worker timeout), the customers' data does not stay on disk unless the user
    can still use it."""
    upload = {
        "token": upload_store(request.session, form.cleaned_data["file"]),
        "filename": form.cleaned_data["file"].name[:FILE_NAME_MAX_LENGTH],
        "skip_invalid": form.cleaned_data["skip_invalid"],
    }
    context, waits = {}, False
    try:
        context = first_step(request, upload)
        waits = any(context.get(key) for key in waiting)
    except refused as problem:
        form.add_error("file", str(problem))
    finally:
        if waits:
            upload_keep(upload["token"])
        else:
            upload_discard(request.session, upload["token"])
    return context
