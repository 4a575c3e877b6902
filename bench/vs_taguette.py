"""Scholion and Taguette 1.5.2 side by side: the annotating loop, timed over HTTP.

    DEBUG=1 .venv/bin/python bench/vs_taguette.py [--runs 15] [--words 5000] [--highlights 500]
                                                 [--taguette-venv var/bench/taguette-1.5.2]

Installs Taguette 1.5.2 (`pip install taguette==1.5.2`) into a virtual environment of its
own, outside the project's dependencies: --taguette-venv, by default var/bench/ in the
checkout (git-ignored), made once and reused. Then builds the same work in both: one document
of --words words in paragraphs, and --highlights highlights on it, each with 1 to 3 of 12 tags.

Each server runs as it is deployed, on loopback, with a throwaway data directory:
- Scholion: gunicorn with one sync worker, DEBUG=0, static files collected, behind what its
  TLS proxy would send (X-Forwarded-Proto: https); its database is bench/ingest.py's throwaway
  one (SQLite in the data directory, or, when DATABASE_URL is set, a fresh PostgreSQL
  database beside the one it names), filled in this process through the models.
- Taguette: `taguette server` with a configuration file of its own and its own SQLite
  database, filled through its web API as its web page would (register, project, tags,
  document, highlights). Its once-a-day request to msg.taguette.org is turned off, so that
  nothing leaves loopback.

Then, over one HTTP connection per server (kept alive where the server allows it: gunicorn's
sync worker closes each connection after its response, so Scholion's requests each open a new
loopback connection, as a proxy in front of it would), it times --runs repetitions of each
step, alternating the servers, after one untimed warm-up of each:
1. create one highlight with its tags: Scholion `POST /api/annotations/` with an API token;
   Taguette `POST /api/project/<p>/document/<d>/highlight/new`, the call its page makes.
2. the document's reading page with its highlights: Scholion `/sources/<uuid>/` (one page,
   session cookie); Taguette the project page `/project/<p>/document/<d>` and the two calls
   its script then makes to show the document (its highlights, its contents), one after the
   other, with no browser cache.
3. every annotation of the document as JSON, as a client wanting all of them gets it:
   Scholion `GET /api/annotations/?source=<uuid>&page_size=1000` (the largest page the API
   gives, `annotations.api.MAX_PAGE_SIZE`), then each `next` page to the end; Taguette
   `GET /api/project/<p>/document/<d>`, the call its page makes (one response).
4. the CSV export: Scholion `/collections/<slug>/export/csv`; Taguette's highlights CSV,
   `/project/<p>/export/highlights/.csv` (every highlight).
The reads run first, on exactly --highlights highlights; the creates last. Prints p50 and p95
of each step for both, the ratio Taguette / Scholion, and the machine's speed reference
(bench/search.py's). Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.imports import command_env  # noqa: E402
from bench.ingest import MB, paragraph, setup_django, teardown_django  # noqa: E402
from bench.search import machine_reference, percentiles  # noqa: E402

TAGUETTE_VERSION = "1.5.2"
DEFAULT_VENV = ROOT / "var" / "bench" / f"taguette-{TAGUETTE_VERSION}"
TAGS = [f"theme-{n:02d}" for n in range(12)]
PASSWORD = "bench-" + secrets.token_urlsafe(12)
HOST = "127.0.0.1"

# Starts `taguette server CONFIG`. Taguette fetches https://msg.taguette.org/<version> when
# it starts and once a day; the benchmark keeps to loopback, so that fetch is replaced by
# "no messages" (which is also what its page shows when the fetch fails).
TAGUETTE_LAUNCHER = (
    "import sys; import taguette.web.base as base;"
    "base.Application.check_messages = lambda self: self.messages_event.set();"
    "from taguette.main import main;"
    "sys.argv = ['taguette', '--no-browser', 'server', sys.argv[1]];"
    "main()"
)


# --- The work: one document, its highlights ------------------------------------------------


@dataclass
class Highlight:
    paragraph: int
    start: int  # offsets within the paragraph
    end: int
    tags: list[str]


@dataclass
class Work:
    paragraphs: list[str]
    highlights: list[Highlight]  # built before timing
    creates: list[Highlight]  # created while timing (and one to warm up)

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


def make_work(words: int, highlights: int, creates: int, seed: int) -> Work:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    while sum(len(p.split()) for p in paragraphs) < words:
        paragraphs.append(paragraph(rng))

    def highlight() -> Highlight:
        # Within one paragraph: the two servers separate paragraphs differently (Scholion's
        # text layer by a blank line, Taguette's HTML by nothing), so offsets map one to one.
        n = rng.randrange(len(paragraphs))
        start = rng.randrange(0, len(paragraphs[n]) - 5)
        end = min(len(paragraphs[n]), start + rng.randint(5, 300))
        return Highlight(n, start, end, rng.sample(TAGS, rng.randint(1, 3)))

    return Work(
        paragraphs,
        [highlight() for _ in range(highlights)],
        [highlight() for _ in range(creates)],
    )


# --- HTTP ----------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Client:
    """One HTTP/1.1 connection to a server on loopback, reopened only when the server closed
    it, and the cookies the server set."""

    port: int
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(HOST, self.port, timeout=300)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> Response:
        if self.conn.sock is None:
            self.connections += 1
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=sent)
        answer = self.conn.getresponse()
        content = answer.read()
        self.requests += 1
        for header in answer.headers.get_all("Set-Cookie") or []:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.coded_value
        if answer.status != expect:
            raise RuntimeError(
                f"{method} {path} answered {answer.status}, not {expect}: {content[:500]!r}"
            )
        return Response(answer.status, answer.headers, content)

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post_json(self, path: str, doc: object, **kwargs) -> Response:
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **kwargs.pop("headers", {})}
        return self.request("POST", path, body=body, headers=headers, **kwargs)

    def post_form(self, path: str, fields: dict[str, str], **kwargs) -> Response:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        headers.update(kwargs.pop("headers", {}))
        return self.request(
            "POST", path, body=urlencode(fields).encode(), headers=headers, **kwargs
        )

    def close(self) -> None:
        self.conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def multipart(
    fields: dict[str, str], name: str, filename: str, content: bytes
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        "\r\nContent-Type: text/html\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@contextmanager
def server(
    label: str, command: list[str], env: dict[str, str], log: Path, probe: Callable[[], bool]
) -> Iterator[subprocess.Popen]:
    """Run a server until the block ends; wait until ``probe`` says it answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # No controlling terminal: Taguette's start-up asks one for an admin password.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{label} stopped at start-up:\n{log.read_text()[-3000:]}")
            try:
                if probe():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{label} did not answer in 2 minutes:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers(port: int, path: str, headers: dict[str, str] | None = None) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status == 200
    finally:
        conn.close()


# --- Taguette ------------------------------------------------------------------------------


def ensure_taguette(venv: Path) -> Path:
    """The Python of a virtual environment holding Taguette TAGUETTE_VERSION, made if need be."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import taguette; print(taguette.__version__)"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.stdout.strip() == TAGUETTE_VERSION:
            return python
    print(f"Installing Taguette {TAGUETTE_VERSION} into {venv} …", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir",
         "--disable-pip-version-check", f"taguette=={TAGUETTE_VERSION}"],
        check=True,
    )  # fmt: skip
    subprocess.run(check, check=True, capture_output=True)
    return python


def taguette_config(path: Path, port: int, database: Path) -> None:
    path.write_text(
        f"""\
NAME = "Taguette benchmark"
BIND_ADDRESS = "{HOST}"
PORT = {port}
BASE_PATH = "/"
DOMAIN = "{HOST}:{port}"
SECRET_KEY = "{secrets.token_urlsafe(30)}"
DATABASE = "sqlite:///{database}"
EMAIL = "Taguette benchmark <taguette@localhost>"
TOS_FILE = None
DEFAULT_LANGUAGE = "en_US"
MAIL_SERVER = {{"ssl": False, "host": "localhost", "port": 25}}
COOKIES_PROMPT = False
REGISTRATION_ENABLED = True
SQLITE3_IMPORT_ENABLED = False
X_HEADERS = False
"""
    )


@dataclass
class TaguetteWork:
    client: Client
    project: int
    document: int
    tag_ids: dict[str, int]

    def xsrf(self) -> str:
        """The query parameter Taguette's script adds to each change it sends."""
        return urlencode({"_xsrf": self.client.cookies["_xsrf"].strip('"')})


def build_taguette(client: Client, work: Work) -> TaguetteWork:
    """Register, make a project with the 12 tags, upload the document, add the highlights:
    the calls Taguette's own pages make."""
    client.get("/register")  # sets the _xsrf cookie
    xsrf = client.cookies["_xsrf"].strip('"')
    client.post_form(
        "/register",
        {"login": "reader", "password1": PASSWORD, "password2": PASSWORD, "_xsrf": xsrf},
        expect=303,
    )
    made = client.post_form(
        "/project/new", {"name": "Bench", "description": "", "_xsrf": xsrf}, expect=303
    )
    location = made.headers.get("Location", "")
    match = re.search(r"/project/(\d+)$", location)
    assert match, f"Taguette's new project is at {location!r}"
    project = int(match.group(1))
    built = TaguetteWork(client, project, 0, {})
    # A new project comes with a tag "interesting"; the work has the 12 tags only.
    page = client.get(f"/project/{project}").body.decode()
    default = re.search(r'"id": (\d+), "path": "interesting"', page)
    assert default, "Taguette's new project has no default tag to remove"
    client.request(
        "DELETE", f"/api/project/{project}/tag/{default.group(1)}?{built.xsrf()}", expect=204
    )
    for name in TAGS:
        answer = client.post_json(
            f"/api/project/{project}/tag/new?{built.xsrf()}", {"path": name, "description": ""}
        )
        built.tag_ids[name] = answer.json()["id"]
    html = "".join(f"<p>{p}</p>" for p in work.paragraphs).encode()
    body, content_type = multipart(
        {"name": "Bench document", "description": "", "_xsrf": xsrf}, "file", "bench.html", html
    )
    added = client.request(
        "POST",
        f"/api/project/{project}/document/new",
        body=body,
        headers={"Content-Type": content_type},
    )
    built.document = added.json()["created"]
    for highlight in work.highlights:
        create_taguette_highlight(built, work, highlight)
    return built


def taguette_offsets(work: Work, highlight: Highlight) -> tuple[int, int]:
    # Taguette counts the UTF-8 bytes of the text in its HTML; the text here is ASCII.
    before = sum(len(p) for p in work.paragraphs[: highlight.paragraph])
    return before + highlight.start, before + highlight.end


def create_taguette_highlight(built: TaguetteWork, work: Work, highlight: Highlight) -> None:
    start, end = taguette_offsets(work, highlight)
    built.client.post_json(
        f"/api/project/{built.project}/document/{built.document}/highlight/new?{built.xsrf()}",
        {
            "start_offset": start,
            "end_offset": end,
            "tags": [built.tag_ids[name] for name in highlight.tags],
        },
    )


def check_taguette(built: TaguetteWork, work: Work) -> None:
    """The highlights landed on the intended words (a wrong offset would shift them)."""
    found = built.client.get(f"/api/project/{built.project}/highlights/?page=1").json()
    expected = {work.paragraphs[h.paragraph][h.start : h.end] for h in work.highlights}
    for highlight in found["highlights"]:
        text = re.sub(r"<[^>]+>", "", highlight["content"])
        assert text in expected, f"Taguette highlighted {text!r}, not one of the planned passages"


# --- Scholion ------------------------------------------------------------------------------


@dataclass
class ScholionWork:
    source_uuid: str
    slug: str
    token: str
    offsets: list[int]  # where each paragraph starts in the text layer


def build_scholion(work: Work) -> ScholionWork:
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from annotations.models import Annotation
    from archive.ingest import archive_chunks
    from archive.models import Collection, Membership

    user = get_user_model().objects.create_user("reader", password=PASSWORD)
    collection = Collection.objects.create(slug="bench", title="Bench", owner=user)
    Membership.objects.create(collection=collection, user=user, role="annotator")
    source = archive_chunks(
        iter(["\n\n".join(work.paragraphs).encode()]),
        user=user,
        collection=collection,
        filename="bench.txt",
        declared_type="text/plain",
    ).source
    offsets: list[int] = []
    at = 0
    for p in work.paragraphs:
        at = source.text.index(p, at)
        offsets.append(at)
        at += len(p)
    for highlight in work.highlights:
        base = offsets[highlight.paragraph]
        Annotation.create_anchored(
            author=user,
            source=source,
            start=base + highlight.start,
            end=base + highlight.end,
            tags=highlight.tags,
        )
    _, token = ApiToken.issue(user, "benchmark", scope=ApiToken.Scope.WRITE)
    return ScholionWork(str(source.uuid), collection.slug, token, offsets)


def scholion_env(data_dir: Path) -> dict[str, str]:
    """The environment of a deployment: DEBUG off, a secret key, this host only."""
    env = command_env()
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS=HOST,
        SCHOLION_STATIC_ROOT=str(data_dir / "static"),
        SCHOLION_LOG_LEVEL="WARNING",
    )
    return env


def log_in_scholion(client: Client) -> None:
    client.get("/accounts/login/")
    client.post_form(
        "/accounts/login/",
        {
            "username": "reader",
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
        headers={"Origin": f"https://{HOST}:{client.port}"},
        expect=302,
    )
    assert "sessionid" in client.cookies


# --- Timing --------------------------------------------------------------------------------


@dataclass
class Step:
    label: str
    scholion: Callable[[], int]  # each returns the bytes it received
    taguette: Callable[[], int]
    samples: dict[str, list[float]] = field(default_factory=lambda: {"s": [], "t": []})
    sizes: dict[str, int] = field(default_factory=dict)


Result = TypeVar("Result")


def timed(request: Callable[[], Result]) -> tuple[float, Result]:
    t0 = time.perf_counter()
    result = request()
    return time.perf_counter() - t0, result


def measure(steps: list[Step], runs: int) -> None:
    for step in steps:
        step.sizes["s"] = step.scholion()  # warm-up: caches, templates, connections
        step.sizes["t"] = step.taguette()
        for _ in range(runs):
            for key, request in (("s", step.scholion), ("t", step.taguette)):
                seconds, _ = timed(request)
                step.samples[key].append(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed repetitions per step (15)")
    parser.add_argument("--words", type=int, default=5_000)
    parser.add_argument("--highlights", type=int, default=500)
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument(
        "--taguette-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"where Taguette is installed (default {DEFAULT_VENV.relative_to(ROOT)})",
    )
    args = parser.parse_args()
    taguette_python = ensure_taguette(args.taguette_venv.resolve())
    work = make_work(args.words, args.highlights, args.runs + 1, args.seed)

    data_dir = Path(tempfile.mkdtemp(prefix="scholion-bench-taguette-"))
    original_db = setup_django(data_dir, max_upload=50 * MB)
    try:
        run(args, work, data_dir, taguette_python)
    finally:
        teardown_django(original_db)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace, work: Work, data_dir: Path, taguette_python: Path) -> None:
    import django
    from django.db import connection

    from annotations.api import MAX_PAGE_SIZE

    t0 = time.perf_counter()
    scholion_work = build_scholion(work)
    vendor = connection.vendor
    connection.close()
    scholion_built = time.perf_counter() - t0

    env = scholion_env(data_dir)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    s_port, t_port = free_port(), free_port()
    while t_port == s_port:
        t_port = free_port()
    # What the TLS-terminating proxy in front of a deployment adds to each request.
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": HOST}
    gunicorn = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{s_port}",
        "--workers", "1", "--worker-class", "sync",
    ]  # fmt: skip

    taguette_dir = data_dir / "taguette"
    (taguette_dir / "home").mkdir(parents=True)
    config = taguette_dir / "config.py"
    taguette_config(config, t_port, taguette_dir / "taguette.sqlite3")
    home = str(taguette_dir / "home")  # anything Taguette keeps per user stays in the run
    taguette_env = {**os.environ, "HOME": home, "XDG_DATA_HOME": home}

    with (
        server(
            "Scholion (gunicorn)",
            gunicorn,
            env,
            data_dir / "gunicorn.log",
            lambda: answers(s_port, "/accounts/login/", proxied),
        ),
        server(
            "Taguette",
            [str(taguette_python), "-c", TAGUETTE_LAUNCHER, str(config)],
            taguette_env,
            taguette_dir / "taguette.log",
            lambda: answers(t_port, "/health"),
        ),
    ):
        s = Client(s_port, headers=proxied)
        t = Client(t_port)
        log_in_scholion(s)
        t0 = time.perf_counter()
        tg = build_taguette(t, work)
        check_taguette(tg, work)
        taguette_built = time.perf_counter() - t0

        token = {"Authorization": f"Bearer {scholion_work.token}"}
        media = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
        source_path = f"/sources/{scholion_work.source_uuid}/"
        doc_api = f"/api/project/{tg.project}/document/{tg.document}"
        creates = iter(work.creates)
        t_creates = iter(work.creates)

        def s_create() -> int:
            highlight = next(creates)
            start = scholion_work.offsets[highlight.paragraph] + highlight.start
            doc = {
                "@context": "http://www.w3.org/ns/anno.jsonld",
                "type": "Annotation",
                "target": {
                    "source": f"https://{HOST}:{s_port}{source_path}",
                    "selector": [
                        {
                            "type": "TextPositionSelector",
                            "start": start,
                            "end": start + highlight.end - highlight.start,
                        }
                    ],
                },
                "body": [
                    {"type": "TextualBody", "value": tag, "purpose": "tagging"}
                    for tag in highlight.tags
                ],
            }
            headers = {**token, "Accept": media, "Content-Type": media}
            return len(
                s.request(
                    "POST", "/api/annotations/", json.dumps(doc).encode(), headers, expect=201
                ).body
            )

        def t_create() -> int:
            highlight = next(t_creates)
            start, end = taguette_offsets(work, highlight)
            answer = t.post_json(
                f"{doc_api}/highlight/new?{tg.xsrf()}",
                {
                    "start_offset": start,
                    "end_offset": end,
                    "tags": [tg.tag_ids[name] for name in highlight.tags],
                },
            )
            return len(answer.body)

        def s_read() -> int:
            return len(s.get(source_path).body)

        # Taguette's reading page is three requests: what each takes, for the figures' reader.
        t_read_parts: dict[str, list[float]] = {"page": [], "highlights": [], "contents": []}

        def t_read() -> int:
            size = 0
            for part, path in (
                ("page", f"/project/{tg.project}/document/{tg.document}"),
                ("highlights", doc_api),
                ("contents", f"{doc_api}/contents"),
            ):
                seconds, answer = timed(partial(t.get, path))
                t_read_parts[part].append(seconds)
                size += len(answer.body)
            return size

        def s_list() -> int:
            # As a client that wants every annotation asks: pages as large as the API gives.
            answer = s.get(
                f"/api/annotations/?source={scholion_work.source_uuid}&page_size={MAX_PAGE_SIZE}",
                headers={**token, "Accept": media},
            )
            size, page = len(answer.body), answer.json()["first"]
            items = len(page["items"])
            while "next" in page:
                parts = urlsplit(page["next"])
                answer = s.get(f"{parts.path}?{parts.query}", headers={**token, "Accept": media})
                size, page = size + len(answer.body), answer.json()
                items += len(page["items"])
            assert items == args.highlights, items
            return size

        def t_list() -> int:
            answer = t.get(doc_api)
            assert len(answer.json()["highlights"]) == args.highlights
            return len(answer.body)

        def s_csv() -> int:
            answer = s.get(f"/collections/{scholion_work.slug}/export/csv", headers=token)
            assert answer.body.count(b"\n") > args.highlights
            return len(answer.body)

        def t_csv() -> int:
            answer = t.get(f"/project/{tg.project}/export/highlights/.csv")
            assert answer.body.count(b"\n") > args.highlights
            return len(answer.body)

        create = Step("create one highlight with its tags", s_create, t_create)
        read = Step(f"reading page, {args.highlights} highlights", s_read, t_read)
        listing = Step("every annotation as JSON", s_list, t_list)
        export = Step("CSV export", s_csv, t_csv)

        print(
            f"Scholion and Taguette {TAGUETTE_VERSION} side by side: Python"
            f" {sys.version.split()[0]}, Django {django.get_version()}, {vendor};"
            f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
            f"One {work.words:,}-word document in {len(work.paragraphs)} paragraphs with"
            f" {args.highlights} highlights, each with 1 to 3 of {len(TAGS)} tags (built in"
            f" {scholion_built:.1f} s in Scholion through its models, {taguette_built:.1f} s in"
            f" Taguette through its API)."
        )
        # Both pages show every highlight (checked once, outside the timing).
        shown = s.get(source_path).body.count(b'<li class="ann" id="a-')
        assert shown == args.highlights, f"Scholion's reading page lists {shown} annotations"
        assert len(t.get(doc_api).json()["highlights"]) == args.highlights
        reference = machine_reference()
        # Reads first, on exactly the built highlights; the creates add to them.
        measure([read, listing, export, create], args.runs)
        after = machine_reference()
        s.close()
        t.close()

    print(f"\n{args.runs} runs of each step, the servers alternating (ms):")
    print(
        f"{'step':<36} {'Scholion p50':>12} {'p95':>7} {'Taguette p50':>12} {'p95':>7}"
        f"  {'Taguette/Scholion p50':>21} {'p95':>5}  {'KB S / T':>11}"
    )
    for step in (create, read, listing, export):
        s50, s95 = percentiles(step.samples["s"])
        t50, t95 = percentiles(step.samples["t"])
        print(
            f"{step.label:<36} {s50 * 1000:>12.1f} {s95 * 1000:>7.1f} {t50 * 1000:>12.1f}"
            f" {t95 * 1000:>7.1f}  {t50 / s50:>20.1f}x {t95 / s95:>4.1f}x"
            f"  {step.sizes['s'] / 1024:>5.0f} / {step.sizes['t'] / 1024:<5.0f}"
        )
    parts = ", ".join(
        f"{part} {percentiles(samples[1:])[0] * 1000:.1f}" for part, samples in t_read_parts.items()
    )  # the first sample is the warm-up's
    print(f"\nTaguette's reading page, p50 of its three requests (ms): {parts}")
    print(
        f"\nRequests: Scholion {s.requests} over {s.connections} connections (gunicorn's sync"
        f" worker closes each), Taguette {t.requests} over {t.connections}."
        f"\nMachine reference (a fixed Python loop, lower is faster): {reference:.1f} ms before"
        f" the steps, {after:.1f} ms after"
    )


if __name__ == "__main__":
    main()
