"""Keep htmx fragments out of the browser's page cache.

A members table swapped in by htmx has the same address as the full members page (the
address is pushed to the history). Without this, the browser's Back button could show the
cached fragment alone, without the site's layout.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers


class HtmxFragmentCacheMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        if request.headers.get("HX-Request") == "true":
            patch_cache_control(response, no_store=True)
        return response
