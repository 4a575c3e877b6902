"""Every template as Django reads it: a comment that spans lines must be {% comment %}, since
{# ... #} holds one line only and shows on the page otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATES = sorted((Path(__file__).resolve().parent.parent / "templates").rglob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_comment_spans_lines(path):
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if "{#" in line:
            assert "#}" in line[line.index("{#") :], f"{path.name}:{number}: use {{% comment %}}"
