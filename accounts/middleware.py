from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.decorators import view_accepts_api_token
from accounts.models import ApiToken


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scholion", error="invalid_token"'
    return response


class BearerTokenMiddleware:
    """Authenticate ``Authorization: Bearer <token>`` requests to views marked
    ``accepts_api_token``; on every other view the header is ignored.

    The decision is made in ``process_view``, from the view the URL resolved to, never from
    the path. It must come before CsrfViewMiddleware in MIDDLEWARE (see config/settings.py):
    it marks the request exempt from CSRF, since a cross-site page cannot make a browser send
    this header, so CSRF protection has nothing to protect on a token request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not view_accepts_api_token(view_func):
            return None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        key = key.strip()
        if not key:
            return _error(401, "The Authorization header has no token after “Bearer”.")
        token = ApiToken.objects.for_key(key)
        if token is None:
            return _error(401, "This API token is unknown or has been revoked.")
        if not token.allows(request.method or "GET"):
            return _error(403, "This API token is read-only; create a read-write token to write.")
        token.record_use()
        user = token.user

        async def auser():
            return user

        request.user = user
        request.auser = auser
        # Django's own flag for a request CsrfViewMiddleware lets through (the test client sets
        # it too); the stubs leave private attributes out.
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return None
