"""REFI-QDA exchange (issue 31): a collection as a .qdpx project and its tags as a .qdc
codebook, each validated against the vendored REFI-QDA Project schema."""

from __future__ import annotations

from functools import cache

import pytest
from django.conf import settings
from lxml import etree

SCHEMA_PATH = settings.BASE_DIR / "exports" / "schemas" / "Project-mrt2019.xsd"
PROJECT_NS = "urn:QDA-XML:project:1.0"


@cache
def project_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def assert_valid_project(document: bytes) -> etree._Element:
    """The parsed project.qde, after checking it against the REFI-QDA Project schema."""
    root = etree.fromstring(document)
    schema = project_schema()
    assert schema.validate(root), schema.error_log
    return root


def test_the_vendored_schema_keeps_its_licence_and_tells_valid_from_invalid():
    assert "MIT license" in SCHEMA_PATH.read_text(encoding="utf-8")
    assert_valid_project(f'<Project xmlns="{PROJECT_NS}" name="p"/>'.encode())
    with pytest.raises(AssertionError):
        assert_valid_project(f'<Project xmlns="{PROJECT_NS}"/>'.encode())  # no name
