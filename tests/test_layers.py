"""Imports run one way: archive ← annotations ← search ← exports, with accounts beside them.

Every module of every app is read (its syntax tree, so imports inside functions and under
TYPE_CHECKING count too). A lower app never imports a higher one, and no two apps import
each other, even through a third. Where a lower app must reach a higher one it does so
through a named seam that needs no import upward; the seams are listed (SEAMS) and checked
to be in place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

# Lowest first: an app may import the apps before it in this list, never those after it.
LAYERS = ["archive", "annotations", "search", "exports"]
# Beside the layers: accounts builds on archive (a collection's members are archive's
# Membership rows); the layers may use its decorators (API tokens on a view), nothing else.
ACCOUNTS = "accounts"
ACCOUNTS_MAY_IMPORT = {"archive"}
ACCOUNTS_OPEN_TO_ALL = {"accounts.decorators"}
APPS = [*LAYERS, ACCOUNTS]

# Where a lower app must tell a higher one something, and how; none of these is an import
# upward, so none is exempt from the rule above.
SEAMS = {
    "index after a write": "archive.signals.source_written and "
    "annotations.signals.annotation_written, connected in search.apps.SearchConfig.ready",
    "export actions in the admin": "exports.admin.offer_export_actions adds them to the "
    "Collection, Source and Annotation admins",
}


def _modules() -> Iterator[tuple[str, Path]]:
    for app in APPS:
        root = settings.BASE_DIR / app
        for path in sorted(root.rglob("*.py")):
            yield ".".join(path.relative_to(settings.BASE_DIR).with_suffix("").parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module name ``module`` imports, with its line, wherever the import stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                # "from archive import cite" imports archive.cite; "from x.y import Z", x.y.
                yield (f"{base}.{alias.name}" if base in APPS else base), node.lineno


def _app_of(name: str) -> str | None:
    top = name.split(".")[0]
    return top if top in APPS else None


def _allowed(importer: str, imported: str, name: str) -> bool:
    if importer == imported:
        return True
    if importer == ACCOUNTS:
        return imported in ACCOUNTS_MAY_IMPORT
    if imported == ACCOUNTS:
        return any(name == m or name.startswith(m + ".") for m in ACCOUNTS_OPEN_TO_ALL)
    return LAYERS.index(imported) < LAYERS.index(importer)


def _app_imports() -> list[tuple[str, str, str, str, int]]:
    """(importing app, imported app, importing module, imported name, line) across apps."""
    found = []
    for module, path in _modules():
        importer = _app_of(module)
        assert importer is not None  # _modules lists only the apps' modules
        for name, line in _imports(module, path):
            imported = _app_of(name)
            if imported is not None and imported != importer:
                found.append((importer, imported, module, name, line))
    return found


def test_the_apps_are_read():
    importers = {importer for importer, *_ in _app_imports()}
    # Would fail if the walk found no modules (a wrong BASE_DIR) or missed function-level
    # imports of the kind exports makes everywhere.
    assert {"annotations", "search", "exports", "accounts"} <= importers


def test_no_app_imports_an_app_above_it():
    upward = sorted(
        {
            f"{module}:{line} imports {name} ({importer} is below {imported})"
            for importer, imported, module, name, line in _app_imports()
            if not _allowed(importer, imported, name)
        }
    )
    assert not upward, "Imports against the layers:\n" + "\n".join(upward)


def test_no_import_loop_between_apps():
    graph: dict[str, set[str]] = {app: set() for app in APPS}
    for importer, imported, *_ in _app_imports():
        graph[importer].add(imported)

    def reaches(start: str, goal: str) -> list[str] | None:
        stack, seen = [[start]], set()
        while stack:
            route = stack.pop()
            for nxt in graph[route[-1]]:
                if nxt == goal:
                    return [*route, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append([*route, nxt])
        return None

    loops = [" -> ".join(loop) for app in APPS if (loop := reaches(app, app))]
    assert not loops, f"Apps importing each other: {loops}"


@pytest.mark.parametrize(
    ("importer", "name", "allowed"),
    [
        ("archive", "search.index", False),
        ("annotations", "exports.admin", False),
        ("accounts", "annotations.models", False),
        ("annotations", "accounts.models", False),
        ("exports", "accounts.decorators", True),
        ("search", "archive.signals", True),
    ],
)
def test_the_rule_tells_up_from_down(importer, name, allowed):
    imported = _app_of(name)
    assert imported is not None
    assert _allowed(importer, imported, name) is allowed


def test_relative_imports_are_resolved(tmp_path):
    module = tmp_path / "listing.py"
    module.write_text("def f():\n    from .index import fold\n    from . import query\n")
    assert [name for name, _ in _imports("search.listing", module)] == [
        "search.index",
        "search.query",
    ]


def test_search_indexes_what_archive_and_annotations_announce():
    """The first seam: without search's receivers, nothing written would be searchable."""
    from annotations.signals import annotation_written
    from archive.signals import source_written

    for signal in (source_written, annotation_written):
        receivers = [entry[1]() for entry in signal.receivers]
        assert any(getattr(r, "__module__", "") == "search.apps" for r in receivers), signal


def test_the_admins_offer_the_export_actions():
    """The second seam: exports adds its actions to the lower apps' admins."""
    from annotations.admin import AnnotationAdmin
    from archive.admin import CollectionAdmin, SourceAdmin
    from exports.admin import ANNOTATION_ACTIONS, COLLECTION_ACTIONS, SOURCE_ACTIONS

    assert set(COLLECTION_ACTIONS) <= set(CollectionAdmin.actions)
    assert set(SOURCE_ACTIONS) <= set(SourceAdmin.actions)
    assert set(ANNOTATION_ACTIONS) <= set(AnnotationAdmin.actions)
