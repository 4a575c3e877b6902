"""Validate documents against the W3C Web Annotation WG's JSON Schema assertions.

The suite (w3c/web-annotation-tests) is vendored in tests/vendor/, with its licence. Every assertion
file listed in the relevant ``.test`` files is loaded and the ``must`` ones are enforced: a
document passes an assertion when validating it gives the assertion's expected result.

jsonschema's FormatChecker checks "uri" and "date-time" only when optional packages are
installed; without them every IRI and timestamp would pass unseen. So both are checked here
with the standard library, strictly enough to catch the mistakes that matter (a relative or
malformed IRI, a timestamp without a zone).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

SUITE = Path(settings.BASE_DIR) / "tests" / "vendor" / "w3c-annotation-tests"
KINDS = {
    "annotation": "annotations",
    "collection": "collections",
    "page": "collections/pages",
}
Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# RFC 3986 absolute URI: a scheme, then no spaces, controls, quotes or angle brackets, and
# percent signs only as %XX escapes.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?:[^\s\"<>\\^`{|}%]|%[0-9A-Fa-f]{2})+$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

format_checker = FormatChecker()


@format_checker.checks("uri")
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(URI.match(value))


@format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # real month, day, hour
    return True


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(SUITE.rglob("*.json")):
        doc = json.loads(path.read_text())
        if "id" in doc:
            resources.append((doc["id"], DRAFT4.create_resource(doc)))
    return Registry().with_resources(resources)


@cache
def must_assertions(kind: str) -> tuple[dict[str, Any], ...]:
    """The `must` assertions of every .test file for one kind of document."""
    folder = SUITE / KINDS[kind]
    test_files = sorted(folder.glob("*.test"))
    assert test_files, f"no .test files in {folder}: is tests/vendor/w3c-annotation-tests there?"
    musts: dict[str, dict[str, Any]] = {}
    for test_file in test_files:
        for name in json.loads(test_file.read_text())["assertions"]:
            assertion = json.loads((SUITE / name).read_text())
            if assertion.get("assertionType") == "must":
                musts[name] = assertion
    assert musts, f"no must assertions for {kind}"
    return tuple(musts.values())


def failures(doc: Any, kind: str) -> list[str]:
    """Every must assertion the document fails, with the suite's message; [] if none."""
    failed = []
    for assertion in must_assertions(kind):
        validator = Draft4Validator(assertion, registry=_registry(), format_checker=format_checker)
        valid = validator.is_valid(doc)
        expected = assertion.get("expectedResult", "valid") == "valid"
        if valid != expected:
            failed.append(f"{assertion['id']}: {assertion.get('errorMessage', '')}")
    failed.extend(_times_not_in_z(doc))
    return failed


def _times_not_in_z(value: Any, where: str = "") -> list[str]:
    """created/modified/generated anywhere in the document (page items included)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in ("created", "modified", "generated") and not (
                isinstance(item, str) and Z_TIME.match(item)
            ):
                found.append(f"{path} must be UTC written with Z (model 3.3.1): {item!r}")
            found.extend(_times_not_in_z(item, path))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_times_not_in_z(item, f"{where}[{i}]"))
    return found


def assert_w3c_annotation(doc: Any) -> None:
    problems = failures(doc, "annotation")
    assert not problems, "\n".join(problems)


def assert_w3c_collection(doc: Any) -> None:
    problems = failures(doc, "collection")
    assert not problems, "\n".join(problems)


def assert_w3c_page(doc: Any) -> None:
    problems = failures(doc, "page")
    assert not problems, "\n".join(problems)
