"""Security headers and sign-in throttling."""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Chart.js resets canvases with an empty style attribute; only that exact value is allowed.
        "style-src-attr 'unsafe-hashes' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Only our own scripts and styles run: no inline code, nothing from other hosts."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


def _attempts_key(request: HttpRequest, username: str) -> str:
    # The name as the sign-in form cleans it (spaces stripped, Unicode NFKC), so " boss"
    # or a full-width "ｂｏｓｓ" count against the account they would sign in to.
    name = AbstractBaseUser.normalize_username(username.strip()).casefold()
    address = request.META.get("REMOTE_ADDR", "")
    digest = hashlib.sha256(f"{address}|{name}".encode()).hexdigest()
    return f"signin-failures:{digest}"


def _failures(key: str) -> int:
    try:
        return cache.get(key, 0)
    except Exception:  # the cache (Redis) is down: sign-in still works, unthrottled
        logger.warning("sign-in throttling skipped: the cache is unavailable")
        return 0


def _record(key: str, failed: bool) -> None:
    try:
        if not failed:
            cache.delete(key)
        else:
            # get + set, not incr: Django's incr on some caches resets the timeout.
            cache.set(key, cache.get(key, 0) + 1, settings.LOGIN_LOCKOUT_SECONDS)
    except Exception:
        logger.warning("sign-in throttling skipped: the cache is unavailable")


class ThrottledLoginView(auth_views.LoginView):
    """Django's sign-in, refusing a user name from an address after repeated failures."""

    def post(self, request, *args, **kwargs):
        key = _attempts_key(request, request.POST.get("username", ""))
        if _failures(key) >= settings.LOGIN_MAX_FAILURES:
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(form=form, locked_minutes=minutes)
            return self.render_to_response(context, status=429)
        response = super().post(request, *args, **kwargs)
        # The form comes back (200) when the attempt failed; success redirects.
        _record(key, failed=response.status_code == 200)
        return response
