from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http.response import HttpResponseBase

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def accepts_api_token(view: View) -> View:
    """Let ``Authorization: Bearer <token>`` requests reach this view as the token's user.

    Only views meant for scripts carry it (the JSON API, the export downloads): a stolen or
    over-shared token must not drive the HTML pages. Put it outermost, above ``csrf_exempt``
    and the method decorators, so that a wrapper without ``functools.wraps`` cannot hide it.
    accounts.middleware.BearerTokenMiddleware reads the mark once the URL has resolved.
    """
    view.accepts_api_token = True  # type: ignore[attr-defined]
    return view


def view_accepts_api_token(view: Callable[..., Any]) -> bool:
    return getattr(view, "accepts_api_token", False) is True
