"""Security headers, private responses and sign-in throttling."""

from __future__ import annotations

import ipaddress
import logging

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control

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


class PrivateResponsesMiddleware:
    """Nothing a signed-in person (or an API token) sees, and no CSV export, stays in a
    browser's or a proxy's cache: customer data on a shared computer must not outlive
    the session."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return response  # the site's own files, the same for everyone
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if signed_in or response.get("Content-Type", "").startswith("text/csv"):
            patch_cache_control(response, no_store=True, private=True)
        return response


# --- Sign-in throttling -------------------------------------------------------------------
# django-axes counts failed sign-ins in the database (one atomic increment per failure) and
# refuses a user name from an address after LOGIN_MAX_FAILURES of them, on every form that
# authenticates with a request: /accounts/login/ and /admin/login/ alike. The settings are
# in settings.py (AXES_*); these are the site's own pieces.


class SignInThrottleBackend(AxesStandaloneBackend):
    """Axes's lockout check, first among the authentication backends.

    Code that authenticates without a web request (a management command, a shell) has no
    address to count against and is not a sign-in form anyone can reach: it is let
    through to the next backend instead of failing as AxesBackend would.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def signin_username(request: HttpRequest, credentials: dict | None) -> str:
    """The name as the sign-in form cleans it (spaces stripped, Unicode NFKC), folded in
    case, so " boss", "BOSS" or a full-width "ｂｏｓｓ" count against the same account."""
    name = (credentials or {}).get("username")
    if name is None:
        name = request.POST.get("username", "") if request is not None else ""
    return AbstractBaseUser.normalize_username(str(name).strip()).casefold()


def client_address(request: HttpRequest) -> str:
    """The address of the person signing in, as the trusted proxies in front of us saw it.

    With SIGNIN_PROXY_COUNT = N (DJANGO_PROXY_COUNT), N proxies each append the address
    they received the request from to X-Forwarded-For, so the N-th entry from the right is
    the client's: entries further left are whatever the client sent and are never read.
    With 0 (the default), or a request that did not come through the proxies (fewer
    entries than proxies), the connection's own address counts.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.SIGNIN_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        logger.warning("sign-in: X-Forwarded-For entry %r is not an address", hops[-count][:60])
        return remote


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """The sign-in page again, saying why and for how long (429), for either sign-in form."""
    minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
    context = {
        "form": AuthenticationForm(request),
        "locked_minutes": minutes,
        "next": request.POST.get("next", "") if request.method == "POST" else "",
    }
    return render(request, "registration/login.html", context, status=429)
