"""The simulated people of bench/load.py, for Locust (run by that script, not by hand).

Annotators sign in through the login form, then read sources, annotate passages (a note,
tags, sometimes a citation of another source), edit and delete their own annotations,
search and open tag pages, with a few seconds' thought between each, as the reading page's
script does it: the annotation API with the session cookie and the CSRF token. Curators
export the collection. Every write and its answer is written to a journal (one JSON line
each) that bench/load.py checks against the database afterwards.

Reads its work from the environment: LOAD_WORK (a JSON file: people, sources, tags,
collection) and LOAD_JOURNAL (where to write the journal).
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from typing import Any

from locust import HttpUser, between, events, task

WORK = json.loads(open(os.environ["LOAD_WORK"], encoding="utf-8").read())  # noqa: SIM115
MEDIA = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
_journal: list[dict[str, Any]] = []
_journal_lock = threading.Lock()
_people = iter(WORK["annotators"])
_curators = iter(WORK["curators"])


def journal(**entry: Any) -> None:
    with _journal_lock:
        _journal.append(entry)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def write_journal(**kwargs: Any) -> None:
    with open(os.environ["LOAD_JOURNAL"], "w", encoding="utf-8") as out:
        for entry in _journal:
            out.write(json.dumps(entry) + "\n")


class Person(HttpUser):
    abstract = True
    username = ""

    def on_start(self) -> None:
        # What the TLS-terminating proxy in front of a deployment adds.
        self.client.headers.update(
            {"X-Forwarded-Proto": "https", "Origin": self.origin, "Referer": self.origin + "/"}
        )
        self.client.get("/accounts/login/", name="log in")
        response = self.client.post(
            "/accounts/login/",
            {
                "username": self.username,
                "password": WORK["password"],
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            name="log in",
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"{self.username} could not log in ({response.status_code})")

    @property
    def origin(self) -> str:
        return "https://" + (self.host or "").split("://", 1)[1]

    def api_headers(self) -> dict[str, str]:
        return {
            "Accept": MEDIA,
            "Content-Type": MEDIA,
            "X-CSRFToken": self.client.cookies.get("csrftoken") or "",
        }


class Annotator(Person):
    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.username = next(_people)
        self.mine: dict[str, str] = {}  # uuid -> ETag, the annotations this person made
        super().on_start()

    def source(self) -> dict[str, Any]:
        return random.choice(WORK["sources"])

    @task(4)
    def read(self) -> None:
        self.client.get(f"/sources/{self.source()['uuid']}/", name="reading page")

    @task(3)
    def annotate(self) -> None:
        source = self.source()
        start = random.randrange(0, source["length"] - 120)
        end = start + random.randint(10, 100)
        marker = uuid.uuid4().hex
        note = f"Load note {marker}: the passage names a date and a place."
        body: list[dict[str, Any]] = [
            {"type": "TextualBody", "value": note, "format": "text/markdown",
             "purpose": "commenting"},
        ] + [
            {"type": "TextualBody", "value": tag, "purpose": "tagging"}
            for tag in random.sample(WORK["tags"], random.randint(1, 3))
        ]  # fmt: skip
        if random.random() < 0.3:
            cited = self.source()
            body.append(
                {
                    "type": "SpecificResource",
                    "purpose": "linking",
                    "source": f"{self.origin}/sources/{cited['uuid']}/",
                    "selector": [{"type": "TextPositionSelector", "start": 0, "end": 20}],
                }
            )
        doc = {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "type": "Annotation",
            "body": body,
            "target": {
                "source": f"{self.origin}/sources/{source['uuid']}/",
                "selector": [{"type": "TextPositionSelector", "start": start, "end": end}],
            },
        }
        with self.client.post(
            "/api/annotations/",
            data=json.dumps(doc),
            headers=self.api_headers(),
            name="create annotation",
            catch_response=True,
        ) as response:
            created = response.status_code == 201
            annotation = response.json()["id"].rstrip("/").rsplit("/", 1)[1] if created else ""
            journal(op="create", status=response.status_code, uuid=annotation, marker=marker)
            if created:
                self.mine[annotation] = response.headers.get("ETag", "")
                response.success()

    @task(1)
    def edit(self) -> None:
        if not self.mine:
            return
        annotation = random.choice(list(self.mine))
        marker = uuid.uuid4().hex
        note = f"Edited note {marker}: checked against the ledger."
        doc = {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "type": "Annotation",
            "body": [
                {"type": "TextualBody", "value": note, "format": "text/markdown",
                 "purpose": "commenting"},
                {"type": "TextualBody", "value": random.choice(WORK["tags"]),
                 "purpose": "tagging"},
            ],
        }  # fmt: skip
        with self.client.put(
            f"/api/annotations/{annotation}",
            data=json.dumps(doc),
            headers={**self.api_headers(), "If-Match": self.mine[annotation]},
            name="edit annotation",
            catch_response=True,
        ) as response:
            journal(op="edit", status=response.status_code, uuid=annotation, marker=marker)
            if response.status_code == 200:
                self.mine[annotation] = response.headers.get("ETag", "")
                response.success()

    @task(1)
    def delete(self) -> None:
        if len(self.mine) < 3:
            return
        annotation = random.choice(list(self.mine))
        with self.client.delete(
            f"/api/annotations/{annotation}",
            headers={**self.api_headers(), "If-Match": self.mine[annotation]},
            name="delete annotation",
            catch_response=True,
        ) as response:
            journal(op="delete", status=response.status_code, uuid=annotation)
            if response.status_code == 204:
                del self.mine[annotation]
                response.success()

    @task(2)
    def search(self) -> None:
        word = random.choice(WORK["words"])
        self.client.get(f"/search/?q={word}", name="search")

    @task(1)
    def tag_page(self) -> None:
        self.client.get(f"/tags/{random.choice(WORK['tag_slugs'])}/", name="tag page")


class Curator(Person):
    fixed_count = 2
    wait_time = between(10, 30)

    def on_start(self) -> None:
        self.username = next(_curators)
        super().on_start()

    @task(2)
    def csv(self) -> None:
        self.client.get(f"/collections/{WORK['collection']}/export/csv", name="export CSV")

    @task(1)
    def jsonld(self) -> None:
        self.client.get(f"/collections/{WORK['collection']}/export/jsonld", name="export JSON-LD")
