"""W3C Web Annotation API (placeholder until the API lands)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def annotation_collection(request: HttpRequest, **kwargs) -> JsonResponse:
    return JsonResponse({"error": "not implemented"}, status=501)


def annotation_detail(request: HttpRequest, uuid) -> JsonResponse:
    return JsonResponse({"error": "not implemented"}, status=501)
