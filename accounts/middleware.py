from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.models import ApiToken


def token_auth_applies(path: str) -> bool:
    """Tokens open the API and exports only; a stolen token cannot drive the HTML pages."""
    return path.startswith("/api/") or "/export" in path


def _error(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scholion", error="invalid_token"'
    return response


class BearerTokenMiddleware:
    """Authenticate ``Authorization: Bearer <token>`` requests to the API and exports.

    Must sit after AuthenticationMiddleware (it replaces request.user). It marks the request
    exempt from CSRF before any view middleware runs: a cross-site page cannot make a
    browser send this header, so CSRF protection has nothing to protect here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not token_auth_applies(request.path_info):
            return self.get_response(request)
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
        request.api_token = token
        request._dont_enforce_csrf_checks = True
        return self.get_response(request)
