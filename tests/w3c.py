"""Validate documents against the W3C Web Annotation WG's JSON Schema assertions.

Only `must` assertions are enforced; each passes when validation gives its expected result.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from django.conf import settings
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SUITE = Path(settings.BASE_DIR).parent / "shared" / "w3c-annotation-tests"
Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@cache
def _registry() -> Registry:
    resources = []
    for path in SUITE.rglob("*.json"):
        doc = json.loads(path.read_text())
        if "id" in doc:
            resources.append((doc["id"], Resource(contents=doc, specification=DRAFT4)))
    return Registry().with_resources(resources)


@cache
def _musts(test_file: str) -> list[dict]:
    listing = json.loads((SUITE / test_file).read_text())
    musts = []
    for name in listing["assertions"]:
        assertion = json.loads((SUITE / name).read_text())
        if assertion.get("assertionType") == "must":
            musts.append(assertion)
    assert musts, f"no must assertions found in {test_file}"
    return musts


def failures(doc: dict, test_file: str) -> list[str]:
    failed = []
    for assertion in _musts(test_file):
        validator = Draft4Validator(assertion, registry=_registry(), format_checker=FormatChecker())
        valid = validator.is_valid(doc)
        expected = assertion.get("expectedResult", "valid") == "valid"
        if valid != expected:
            failed.append(f"{assertion['id']}: {assertion.get('errorMessage', '')}")
    for key in ("created", "modified", "generated"):
        if key in doc and not Z_TIME.match(doc[key]):
            failed.append(f"{key} must be UTC written with Z (model 3.3.1): {doc[key]}")
    return failed


def assert_w3c_annotation(doc: dict) -> None:
    problems = failures(doc, "annotations/annotationMusts.test")
    assert not problems, "\n".join(problems)


def assert_w3c_collection(doc: dict) -> None:
    problems = failures(doc, "collections/collectionMusts.test")
    assert not problems, "\n".join(problems)


def assert_w3c_page(doc: dict) -> None:
    problems = failures(doc, "collections/pages/pageMusts.test")
    assert not problems, "\n".join(problems)
