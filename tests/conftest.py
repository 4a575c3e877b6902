"""Shared fixtures: the owner/member/stranger set every view test reuses."""

from __future__ import annotations

import io
import os
import shutil
import signal

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.s3 import s3, s3_server  # noqa: F401 - fixtures: an S3 server and a bucket in it

DEMO_PATH = settings.BASE_DIR / "demo" / "000_7ab34eae5234665d.txt"


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("olive", "olive@example.org", "pw-olive-123")


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("maya", "maya@example.org", "pw-maya-123")


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("sam", "sam@example.org", "pw-sam-123")


@pytest.fixture
def curator(django_user_model):
    return django_user_model.objects.create_user(
        "cora", "cora@example.org", "pw-cora-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def collection(owner, member):
    from archive.models import Collection, Membership

    c = Collection.objects.create(slug="field-notes", title="Field notes", owner=owner)
    Membership.objects.create(collection=c, user=owner, role=Membership.Role.OWNER)
    Membership.objects.create(collection=c, user=member, role=Membership.Role.ANNOTATOR)
    return c


def archive_text(text: str | bytes, user=None, collection=None, **kwargs):
    from archive.ingest import archive_chunks

    data = text.encode("utf-8") if isinstance(text, str) else text
    return archive_chunks(iter([data]), user=user, collection=collection, **kwargs).source


@pytest.fixture
def demo_source(owner, collection):
    from archive.ingest import archive_chunks

    with DEMO_PATH.open("rb") as fh:
        return archive_chunks(
            iter([fh.read()]),
            user=owner,
            collection=collection,
            filename=DEMO_PATH.name,
            declared_type="text/plain",
            via="cli",
        ).source


def run_worker() -> str:
    """Run every queued task in this process through the real database backend and worker
    (django_tasks_db's db_worker), then return what it printed. Needs committed rows: use it
    in transactional tests."""
    out = io.StringIO()
    # The worker installs its own shutdown handlers; give pytest its own back afterwards.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", stdout=out)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return out.getvalue()


# --- Browser tests: Playwright driving Debian's Chromium -----------------------------------

CHROMIUM = os.environ.get("SCHOLION_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("SCHOLION_REQUIRE_BROWSER") == "1"
_browser_results = {"passed": 0}


@pytest.fixture(scope="session")
def _playwright_browser():
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if REQUIRE_BROWSER:
            pytest.fail(f"Playwright is not installed: {exc}")
        pytest.skip("Playwright is not installed")
    # Playwright's sync API runs an event loop; Django must allow sync DB access beside it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(_playwright_browser, live_server):
    context = _playwright_browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 850}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


SELECT_JS = """
([selector, start, end]) => {
  // Screen rectangles of the code-point offsets start and end in a rendered text layer.
  const runs = [...document.querySelectorAll(selector + ' [data-o]')];
  function point(offset) {
    for (const run of runs) {
      const node = run.firstChild; if (!node) continue;
      const base = Number(run.dataset.o); const chars = [...node.data];
      if (offset >= base && offset <= base + chars.length) {
        const units = chars.slice(0, offset - base).join('').length;
        const r = document.createRange(); r.setStart(node, units); r.setEnd(node, units);
        const rect = r.getBoundingClientRect(); return [rect.left, rect.top + rect.height / 2];
      }
    }
    throw new Error('offset not rendered: ' + offset);
  }
  return [point(start), point(end)];
}
"""


def drag_select(page, start: int, end: int, within: str = "#text-layer") -> None:
    """Select text-layer offsets start..end (of the layer ``within`` selects) with a real
    mouse drag."""
    (x1, y1), (x2, y2) = page.evaluate(SELECT_JS, [within, start, end])
    page.mouse.move(x1 + 0.5, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=4)
    page.mouse.move(x2 - 0.5, y2, steps=4)
    page.mouse.up()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test databases, dropped only once the search helpers have closed
    their connections (PostgreSQL refuses to drop a database a session is connected to)."""
    yield
    from search.parallel import close_helper_connections

    close_helper_connections()


# --- Real tools as oracles: pandoc, LibreOffice, biber, LaTeX, citeproc-js -------------------------------------------

REQUIRE_TOOLS = os.environ.get("SCHOLION_REQUIRE_TOOLS") == "1"
_tool_results = {"passed": 0}


def program(name: str, debian_package: str) -> str:
    """The path of a program a test runs as its oracle. Missing, the test is skipped locally
    and fails in CI (SCHOLION_REQUIRE_TOOLS=1), as the browser tests do."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y {debian_package})"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "browser" in report.keywords:
        _browser_results["passed"] += 1
    if report.when == "call" and report.passed and "tools" in report.keywords:
        _tool_results["passed"] += 1


def pytest_sessionfinish(session, exitstatus):
    if REQUIRE_BROWSER and exitstatus == 0 and _browser_results["passed"] == 0:
        print("\nSCHOLION_REQUIRE_BROWSER=1 but no browser test ran and passed.")
        session.exitstatus = 1
    if REQUIRE_TOOLS and exitstatus == 0 and _tool_results["passed"] == 0:
        print("\nSCHOLION_REQUIRE_TOOLS=1 but no test with an oracle tool ran and passed.")
        session.exitstatus = 1


# --- An annotated collection, for exports and imports -------------------------------------

ALPHA_TEXT = (
    "Alpha report.\n\nThe first passage is here, and then a second one follows it.\n"
    "A line that mentions =SUM(A1) and other things; then the end of the alpha text."
)
BETA_TEXT = "Beta notes: the harbour froze in 1709, said the ledger. Bread was dear."


@pytest.fixture
def annotated(owner, member, collection):
    """field-notes with two sources and annotations of every visibility by olive and maya.

    ``maya-private`` is maya's private annotation: it must never reach anyone else's export.
    """
    from annotations.models import Annotation

    alpha = archive_text(
        ALPHA_TEXT,
        owner,
        collection,
        filename="alpha report.txt",
        metadata={"title": "Alpha report", "creators": ["Ada Lovelace"], "date_published": "1843"},
    )
    beta = archive_text(
        BETA_TEXT, member, collection, metadata={"title": "Beta notes", "publisher": "Ledger & Co"}
    )

    def make(author, source, quote, **kwargs):
        start = source.text.index(quote)
        return Annotation.create_anchored(
            author=author, source=source, start=start, end=start + len(quote), **kwargs
        )

    annotations = {
        "olive-collection": make(
            owner,
            alpha,
            "The first passage",
            note='Line one\nLine two, with "quotes" and a comma',
            tags=["dates", "claims"],
        ),
        "olive-private": make(
            owner, alpha, "=SUM(A1)", note='=HYPERLINK("http://evil")', visibility="private"
        ),
        "maya-private": make(
            member, alpha, "a second one", note="MAYAPRIVATE", visibility="private"
        ),
        "maya-collection": make(
            member, beta, "the harbour froze in 1709", note="-minus first", tags=["claims"]
        ),
        "maya-public": make(member, beta, "Bread was dear", visibility="public", tags=["prices"]),
    }
    return {"collection": collection, "alpha": alpha, "beta": beta, "a": annotations}


# --- Every way of writing a note keeps its rendered form in step -----------------------------

# The modules whose tests write notes by every path there is: the API, the admin, undo,
# replies, codebook changes, and the imports (bag, Hypothesis, QDPX, W3C). After each of their
# tests, every note's stored rendering must be what its text renders to now, so a way of
# writing that forgets to render fails there.
NOTE_WRITING_MODULES = {
    "test_annotation_admin",
    "test_annotation_api",
    "test_annotation_undo",
    "test_codebook",
    "test_hypothesis_import",
    "test_hypothesis_replies",
    "test_hypothesis_upload",
    "test_import_attacks",
    "test_imports",
    "test_qdpx_import",
    "test_replies",
    "test_w3c",
}


def stale_rendered_notes() -> list[str]:
    """The notes whose stored rendering is not what their text renders to now."""
    from annotations.markdown import render_note
    from annotations.models import Annotation, Comment

    stale = []
    for pk, note, html, plain in Annotation.objects.values_list(
        "pk", "note", "note_rendered", "note_plain"
    ):
        if (html, plain) != tuple(render_note(note)):
            stale.append(f"annotation {pk}: {note[:60]!r}")
    for pk, note, html in Comment.objects.values_list("pk", "note", "note_rendered"):
        if html != render_note(note).html:
            stale.append(f"comment {pk}: {note[:60]!r}")
    return stale


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # a failing test raises here, and is not checked further
    uses_db = item.get_closest_marker("django_db") or {"db", "transactional_db"} & set(
        getattr(item, "fixturenames", ())
    )
    if uses_db and item.path.stem in NOTE_WRITING_MODULES:
        stale = stale_rendered_notes()
        assert not stale, "notes written without their rendering: " + "; ".join(stale)
    return result
