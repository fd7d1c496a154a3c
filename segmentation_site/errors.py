"""Error pages: the site's own look for people, JSON for the API's callers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

MESSAGES = {
    400: "The request could not be read (it may be too large or malformed).",
    403: "You do not have permission for this page.",
    404: "There is no such page.",
    500: "Something went wrong on our side. The error was logged; please try again.",
}


def _error(request: HttpRequest, status: int, *, page_context: bool = True) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": MESSAGES[status]}, status=status)
    context = {"status": status, "message": MESSAGES[status]}
    return render(request if page_context else None, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever failed may be what a context processor needs.
    return _error(request, 500, page_context=False)
