"""Failed-login throttling with django-axes: the backend and the client address it counts by."""

from __future__ import annotations

import ipaddress

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, tolerant of ``authenticate()`` calls made without a request.

    Every login form (ours and the admin's) passes the request, so those are
    throttled. Only the test client's ``client.login()`` and shell calls have none; axes
    would raise for them, so they pass through to the next backend unthrottled.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address failed logins are counted against.

    Behind ``SCHOLION_PROXY_COUNT`` reverse proxies, each appending to X-Forwarded-For, the
    client is that many entries from the right; entries further left are whatever the client
    chose to send. Without proxies, REMOTE_ADDR is the client.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.SCHOLION_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < count:
        return remote
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
