"""The W3C Web Annotation Protocol's server checks, run over real HTTP against the live server.

A port of the Web Annotation Working Group's protocol test suite (web-platform-tests,
``annotation-protocol/server/server-manual.html``): its 36 MUST checks and 9 SHOULD checks, one
test each (a check's title, quoted in the docstring, is the suite's), then the protocol's other
server requirements the suite leaves out (Accept-Post, the IRI-only representation,
Preference-Applied, 406, via, deletion from the container). The titles are quoted from that
suite, W3C software under the 3-clause BSD licence (see
tests/vendor/w3c-annotation-tests/LICENSE.md); the code is Scholion's.

Where Scholion departs from what the suite's requests assume, the test says so: it annotates
its own archived sources, so a new annotation targets a passage of one (the suite's targets a
web page); its anchors never move, so the update check changes the note (the suite's changes
the target); and the suite's check for full descriptions looks for an @context in each item,
which the protocol's own examples leave out, so the port checks that each item is a complete
Annotation under the page's context.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest

from accounts.models import ApiToken
from annotations import api
from annotations.models import Annotation
from tests.w3c import assert_w3c_annotation, assert_w3c_collection, assert_w3c_page

pytestmark = pytest.mark.django_db(transaction=True)
MEDIA_TYPE = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
PREFER = 'return=representation;include="{}"'
MINIMAL = "http://www.w3.org/ns/ldp#PreferMinimalContainer"
IRIS = "http://www.w3.org/ns/oa#PreferContainedIRIs"
DESCRIPTIONS = "http://www.w3.org/ns/oa#PreferContainedDescriptions"


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str:
        """Every value of the header, joined as one (HTTP allows either)."""
        return ", ".join(self.headers.get_all(name) or [])

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """The live server's container, as a client with maya's read-write token sees it."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.container = url + "/api/annotations/"
        self.token = token

    def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: bool = True,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self.token}"} if token else {}
        if body is not None:
            sent["Content-Type"] = MEDIA_TYPE
        sent.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        # Only ever the live test server's own http:// URLs.
        request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as refused:
            return Answer(refused.code, refused.headers, refused.read())

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self.request("GET", url, **kwargs)


@pytest.fixture
def server(live_server, member, demo_source, monkeypatch) -> Server:
    """Five of maya's annotations on the demo source, two to a page: three pages."""
    monkeypatch.setattr(api, "PAGE_SIZE", 2)  # the live server runs in this process
    for i in range(5):
        Annotation.create_anchored(
            author=member, source=demo_source, start=10 * i, end=10 * i + 5, note=f"Note {i}"
        )
    _, token = ApiToken.issue(member, "protocol checks", scope=ApiToken.Scope.WRITE)
    return Server(live_server.url, token)


@pytest.fixture
def annotation_url(server) -> str:
    return server.get(server.container).json()["first"]["items"][0]["id"]


def new_annotation(demo_source) -> dict[str, Any]:
    """The suite's annotation, aimed at a passage of an archived source."""
    return {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "body": {"type": "TextualBody", "value": "I like this page!"},
        "target": {
            "source": f"http://localhost/sources/{demo_source.uuid}/",
            "selector": {"type": "TextQuoteSelector", "exact": "March 31"},
        },
        "canonical": "urn:uuid:dbfb1861-0ecf-41ad-be94-a584e5c4f1df",
    }


# --- 4. Annotation Containers: the container IRI and its headers ---------------------------


def test_container_iri_ends_in_a_slash(server):
    """'Container MUST end in a "/" character'"""
    assert server.container.endswith("/")
    assert server.get(server.container).json()["id"] == server.container


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_container_allow_header_names_each_method_it_must_support(server, method):
    """'Containers MUST support GET / HEAD / OPTIONS (check Allow on GET)'"""
    allowed = [m.strip() for m in server.get(server.container).header("Allow").split(",")]
    assert method in allowed and "POST" in allowed


def test_container_content_type_is_json_ld(server):
    """'Containers MUST have a Content-Type header with the application/ld+json media type'"""
    answer = server.get(server.container)
    assert answer.status == 200
    assert answer.header("Content-Type") == MEDIA_TYPE


def test_container_answers_json_ld_by_default(server):
    """'Containers MUST response with the JSON-LD representation (by default)': no Accept."""
    answer = server.get(server.container, headers={"Accept": ""})
    assert answer.header("Content-Type").startswith("application/ld+json")
    assert answer.json()["@context"][0] == "http://www.w3.org/ns/anno.jsonld"


def test_container_type_includes_basic_container_with_the_ldp_context(server):
    """'Containers MUST return a description of the container with BasicContainer'"""
    doc = server.get(server.container).json()
    assert "BasicContainer" in doc["type"]
    assert doc["@context"][:2] == [
        "http://www.w3.org/ns/anno.jsonld",
        "http://www.w3.org/ns/ldp.jsonld",
    ]


def test_container_type_includes_annotation_collection(server):
    """'Containers MUST return a description of the container with AnnotationCollection'"""
    doc = server.get(server.container).json()
    assert "AnnotationCollection" in doc["type"]
    assert_w3c_collection(doc)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_container_sends_a_link_header_on_every_response(server, method):
    """'Containers MUST return a Link header (rfc5988) on all responses'"""
    answer = server.request(method, server.container)
    assert answer.status == 200
    assert answer.header("Link")


def test_container_has_an_etag(server, member, demo_source):
    """'Containers MUST have an ETag header': one that changes when the container does."""
    first = server.get(server.container).header("ETag")
    assert first.startswith('"') and first == server.get(server.container).header("ETag")
    Annotation.create_anchored(author=member, source=demo_source, start=100, end=104)
    assert server.get(server.container).header("ETag") != first


def test_container_varies_on_accept(server):
    """'Containers MUST have a Vary header with Accept in the value'"""
    assert "Accept" in [v.strip() for v in server.get(server.container).header("Vary").split(",")]


def test_container_link_advertises_its_type(server):
    """'Containers MUST advertise its type by including a link where the rel parameter value is
    type and the target IRI is the appropriate Container Type'"""
    link = server.get(server.container).header("Link")
    assert '<http://www.w3.org/ns/ldp#BasicContainer>; rel="type"' in link


def test_container_link_advertises_the_protocol_constraints(server):
    """'Containers MUST advertise that it imposes Annotation protocol specific constraints by
    including a link where the target IRI is http://www.w3.org/TR/annotation-protocol/, and the
    rel parameter value is the IRI http://www.w3.org/ns/ldp#constrainedBy'"""
    link = server.get(server.container).header("Link")
    assert (
        '<http://www.w3.org/TR/annotation-protocol/>; rel="http://www.w3.org/ns/ldp#constrainedBy"'
        in link
    )


def test_container_supports_head(server):
    """'Containers MUST support HEAD method'"""
    answer = server.request("HEAD", server.container)
    assert answer.status == 200 and answer.body == b""
    assert answer.header("ETag") == server.get(server.container).header("ETag")


def test_container_supports_options(server):
    """'Containers MUST support OPTIONS method'"""
    answer = server.request("OPTIONS", server.container)
    assert answer.status == 200
    assert {m.strip() for m in answer.header("Allow").split(",")} == {
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    }


# --- 4.1 Container representations ---------------------------------------------------------


def test_container_content_location_is_sent(server):
    """'Containers MUST include a Content-Location header with the IRI as its value'"""
    assert server.get(server.container).header("Content-Location") == server.container


def test_container_content_location_matches_its_id(server, demo_source):
    """ "Container's Content-Location and `id` MUST match": with filters and preferences too."""
    for url, prefer in (
        (server.container, ""),
        (f"{server.container}?source={demo_source.uuid}", ""),
        (server.container, PREFER.format(IRIS)),
    ):
        answer = server.get(url, headers={"Prefer": prefer} if prefer else {})
        assert answer.header("Content-Location") == answer.json()["id"]


def first_page_url(server) -> str:
    doc = server.get(server.container, headers={"Prefer": PREFER.format(MINIMAL)}).json()
    return doc["first"]


def test_pages_link_the_container_they_are_part_of(server):
    """'Annotation Pages must have a link to the container they are part of, using the partOf
    property'"""
    page = server.get(first_page_url(server)).json()
    assert page["partOf"]["id"] == server.container
    assert_w3c_page(page)
    embedded = server.get(server.container).json()["first"]
    assert embedded["partOf"] == {"id": server.container}


def test_the_last_page_links_the_previous_one(server):
    """'Annotation Pages MUST have a link to the previous page in the sequence, using the prev
    property (if not the first page)'"""
    last = server.get(server.get(server.container).json()["last"]).json()
    assert last["prev"].startswith(f"{server.container}?before=")
    assert server.get(last["prev"]).json()["startIndex"] == 2


def test_the_first_page_links_the_next_one(server):
    """'Annotation Pages MUST have a link to the next page in the sequence, using the next
    property (if not the last page)'"""
    page = server.get(first_page_url(server)).json()
    assert "prev" not in page and page["next"].startswith(f"{server.container}?after=")
    assert server.get(page["next"]).json()["startIndex"] == 2
    assert server.get(server.get(page["next"]).json()["next"]).json().get("next") is None


# --- 3. Annotation retrieval ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_annotation_allow_header_names_each_method_it_must_support(server, annotation_url, method):
    """'Annotations MUST support GET / HEAD / OPTIONS (check Allow on GET)'"""
    allowed = [m.strip() for m in server.get(annotation_url).header("Allow").split(",")]
    assert method in allowed and "PUT" in allowed and "DELETE" in allowed


def test_annotation_content_type_is_json_ld(server, annotation_url):
    """'Annotations MUST have a Content-Type header with the application/ld+json media type'"""
    answer = server.get(annotation_url)
    assert answer.header("Content-Type") == MEDIA_TYPE
    assert_w3c_annotation(answer.json())


def test_annotation_link_says_it_is_an_ldp_resource(server, annotation_url):
    """'Annotations MUST have a Link header entry where the target IRI is
    http://www.w3.org/ns/ldp#Resource and the rel parameter value is type'"""
    assert (
        server.get(annotation_url).header("Link")
        == '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
    )


def test_annotation_has_an_etag(server, annotation_url):
    """'Annotations MUST have an ETag header'"""
    etag = server.get(annotation_url).header("ETag")
    assert etag.startswith('"') and etag == server.request("HEAD", annotation_url).header("ETag")


def test_annotation_varies_on_accept(server, annotation_url):
    """'Annotations MUST have a Vary header with Accept in the value'"""
    assert "Accept" in [v.strip() for v in server.get(annotation_url).header("Vary").split(",")]


def test_annotation_supports_head(server, annotation_url):
    """'Annotations MUST support HEAD method'"""
    answer = server.request("HEAD", annotation_url)
    assert answer.status == 200 and answer.body == b""


def test_annotation_supports_options(server, annotation_url):
    """'Annotations MUST support OPTIONS method'"""
    answer = server.request("OPTIONS", annotation_url)
    assert answer.status == 200
    assert {m.strip() for m in answer.header("Allow").split(",")} == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "DELETE",
    }


# --- 5. Creation, update and deletion ------------------------------------------------------


@pytest.fixture
def creation(server, demo_source) -> tuple[dict[str, Any], Answer]:
    sent = new_annotation(demo_source)
    return sent, server.request("POST", server.container, body=sent)


def test_created_annotation_has_an_id(creation):
    """'Created Annotation MUST have an id property'"""
    _, answer = creation
    assert answer.json()["id"]
    assert_w3c_annotation(answer.json())


def test_created_annotation_id_starts_with_the_container_iri(server, creation):
    """'Created Annotation MUST have an id that starts with the Container IRI'"""
    _, answer = creation
    assert answer.json()["id"].startswith(server.container)
    assert server.get(answer.json()["id"]).status == 200


def test_created_annotation_keeps_its_canonical_iri(server, creation):
    """'Created Annotation MUST preserve any canonical IRI'"""
    sent, answer = creation
    assert answer.json()["canonical"] == sent["canonical"]
    assert server.get(answer.json()["id"]).json()["canonical"] == sent["canonical"]


def test_creation_answers_201_created(creation):
    """'Annotation Server MUST respond with a 201 Created code if the creation is successful'"""
    _, answer = creation
    assert answer.status == 201


def test_creation_location_is_the_new_id(creation):
    """'Location header SHOULD match the id of the new Annotation' (the spec says MUST)"""
    _, answer = creation
    assert answer.header("Location") == answer.json()["id"]


def test_an_annotation_is_updated_with_put(server, creation):
    """'Annotation update must be done with the PUT method': the suite moves the target, but a
    Scholion anchor never moves, so the note changes (a moved target gets 400)."""
    _, created = creation
    doc = created.json()
    doc["body"] = [
        {"type": "TextualBody", "value": "I REALLY like this page!", "purpose": "commenting"}
    ]
    answer = server.request(
        "PUT", doc["id"], body=doc, headers={"If-Match": created.header("ETag")}
    )
    assert answer.status == 200
    assert answer.json()["body"][0]["value"] == "I REALLY like this page!"
    assert answer.json()["target"] == doc["target"]
    assert server.get(doc["id"]).json() == answer.json()
    moved = {**doc, "target": "http://other.example/"}
    assert server.request("PUT", doc["id"], body=moved).status == 400


def test_deleting_an_annotation_answers_204(server, creation):
    """'Annotation deletion with DELETE method MUST return a 204 status'"""
    _, created = creation
    answer = server.request("DELETE", created.json()["id"])
    assert answer.status == 204
    assert server.get(created.json()["id"]).status == 404


# --- The suite's SHOULD checks -------------------------------------------------------------


def test_behind_the_tls_proxy_every_iri_is_https(server):
    """'[RECOMMENDED] Annotation server SHOULD use HTTPS rather than HTTP': the test server
    speaks plain HTTP, so this checks what a deployment behind its TLS-terminating proxy
    gives: HTTPS IRIs, and HSTS so that browsers keep to HTTPS."""
    answer = server.get(server.container, headers={"X-Forwarded-Proto": "https"})
    doc = answer.json()
    assert doc["id"].startswith("https://") and doc["first"]["id"].startswith("https://")
    assert all(item["id"].startswith("https://") for item in doc["first"]["items"])
    assert answer.header("Content-Location").startswith("https://")
    assert "max-age=" in answer.header("Strict-Transport-Security")


def test_pages_return_full_annotation_descriptions(server):
    """'SHOULD return the full annotation descriptions': the suite looks for an @context in
    each item, which the protocol's examples leave out; each item here is a whole Annotation
    under its page's context."""
    page = server.get(first_page_url(server)).json()
    assert len(page["items"]) == 2
    for item in page["items"]:
        assert_w3c_annotation({"@context": page["@context"], **item})
        assert item["body"][0]["value"].startswith("Note ")


def minimal(server) -> Answer:
    return server.get(server.container, headers={"Prefer": PREFER.format(MINIMAL)})


def test_minimal_container_has_the_total(server):
    """'[RECOMMENDED] SHOULD include the total property with the total number of annotations in
    the container'"""
    assert minimal(server).json()["total"] == 5


def test_minimal_container_links_the_first_page(server):
    """'[RECOMMENDED] SHOULD have a link to the first page of its contents using `first`'"""
    doc = minimal(server).json()
    assert doc["first"] == f"{server.container}?page=first"
    assert server.get(doc["first"]).json()["type"] == "AnnotationPage"


def test_minimal_container_links_the_last_page(server):
    """'[RECOMMENDED] SHOULD have a link to the last page of its contents using `last`'"""
    doc = minimal(server).json()
    assert doc["last"] == f"{server.container}?page=last"
    assert len(server.get(doc["last"]).json()["items"]) == 1


def test_minimal_container_has_no_items(server):
    """'[RECOMMENDED] Response contains annotations via `items` when it SHOULD NOT'"""
    body = minimal(server).body
    assert b'"items"' not in body and b"Note 0" not in body
    assert_w3c_collection(minimal(server).json())


def test_minimal_container_has_no_ldp_contains(server):
    """'[RECOMMENDED] Response contains annotations via `ldp:contains` when it SHOULD NOT'"""
    doc = minimal(server).json()
    assert "ldp:contains" not in doc and "contains" not in doc


def test_container_varies_on_prefer(server):
    """'[RECOMMENDED] SHOULD include Prefer in the Vary header'"""
    vary = [v.strip() for v in minimal(server).header("Vary").split(",")]
    assert "Prefer" in vary and "Accept" in vary


def test_the_response_carries_no_prefer_header(server):
    """'[RECOMMENDED] SHOULD NOT [receive] the Prefer header when requesting the page'"""
    assert minimal(server).header("Prefer") == ""
    assert server.get(first_page_url(server)).header("Prefer") == ""


# --- Beyond the suite: the rest of the protocol's server requirements -----------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_container_says_what_it_accepts_by_post(server, method):
    """Protocol 4: Accept-Post on GET, HEAD and OPTIONS responses of a container that takes
    POST."""
    assert server.request(method, server.container).header("Accept-Post") == MEDIA_TYPE


def test_minimal_container_says_which_preference_it_applied(server):
    """RFC 7240: Preference-Applied names what was honoured."""
    answer = minimal(server)
    assert answer.header("Preference-Applied") == PREFER.format(MINIMAL).replace(";", "; ")
    assert server.get(server.container).header("Preference-Applied") == ""


def test_prefer_contained_iris_lists_iris_in_the_container_and_its_pages(server):
    """Protocol 4.2.2: PreferContainedIRIs gives a first page whose items are IRIs only, the
    linked pages follow it, and the representation has an IRI of its own (``iris=1``)."""
    answer = server.get(server.container, headers={"Prefer": PREFER.format(IRIS)})
    doc = answer.json()
    assert doc["id"] == answer.header("Content-Location") == f"{server.container}?iris=1"
    assert answer.header("Preference-Applied") == f'return=representation; include="{IRIS}"'
    assert all(isinstance(i, str) and i.startswith(server.container) for i in doc["first"]["items"])
    assert len(doc["first"]["items"]) == 2
    assert_w3c_collection(doc)
    following = server.get(doc["first"]["next"]).json()
    assert doc["first"]["next"].startswith(f"{server.container}?iris=1&after=")
    assert all(isinstance(i, str) for i in following["items"]) and len(following["items"]) == 2
    assert_w3c_page(following)
    every = doc["first"]["items"] + following["items"] + server.get(doc["last"]).json()["items"]
    described: list[str] = []
    page = server.get(f"{server.container}?page=first").json()
    while True:
        described += [item["id"] for item in page["items"]]
        if "next" not in page:
            break
        page = server.get(page["next"]).json()
    assert every == described and len(described) == 5


def test_minimal_and_iris_together_link_pages_of_iris(server):
    """The protocol's own example: both preferences, a container without items whose pages
    list IRIs."""
    answer = server.get(server.container, headers={"Prefer": PREFER.format(f"{MINIMAL} {IRIS}")})
    doc = answer.json()
    assert doc["first"] == f"{server.container}?iris=1&page=first"
    assert MINIMAL in answer.header("Preference-Applied")
    assert IRIS in answer.header("Preference-Applied")
    assert all(isinstance(i, str) for i in server.get(doc["first"]).json()["items"])


def test_contained_descriptions_are_the_default_and_both_at_once_are_ignored(server):
    """Protocol 4.2: no preference means PreferContainedDescriptions; IRIs and descriptions
    together cannot both be honoured, and the client gets the default."""
    default = server.get(server.container).json()
    described = server.get(server.container, headers={"Prefer": PREFER.format(DESCRIPTIONS)})
    assert described.json() == default
    assert described.header("Preference-Applied") == (
        f'return=representation; include="{DESCRIPTIONS}"'
    )
    both = server.get(server.container, headers={"Prefer": PREFER.format(f"{IRIS} {DESCRIPTIONS}")})
    assert both.json() == default and both.header("Preference-Applied") == ""


@pytest.mark.parametrize("accept", ["text/turtle", "application/rdf+xml", "text/html;q=1, */*;q=0"])
def test_a_format_other_than_json_ld_is_406(server, annotation_url, accept):
    """Protocol error conditions: 406 when the representation asked for is not available
    (Scholion serves JSON-LD only)."""
    for url in (server.container, annotation_url, f"{server.container}?page=last"):
        answer = server.get(url, headers={"Accept": accept})
        assert answer.status == 406, url
        assert "JSON-LD" in answer.json()["error"]
        assert "Accept" in answer.header("Vary")


@pytest.mark.parametrize(
    "accept",
    [
        MEDIA_TYPE,
        "application/ld+json",
        "application/json",
        'application/ld+json;profile="http://www.w3.org/ns/anno.jsonld http://www.w3.org/ns/ldp.jsonld"',
        "text/turtle, application/ld+json;q=0.5",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ],
)
def test_json_ld_however_asked_for_is_served(server, annotation_url, accept):
    for url in (server.container, annotation_url):
        answer = server.get(url, headers={"Accept": accept})
        assert answer.status == 200 and answer.header("Content-Type") == MEDIA_TYPE


def test_a_json_ld_profile_other_than_anno_is_406(server):
    answer = server.get(
        server.container,
        headers={"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'},
    )
    assert answer.status == 406


def test_an_id_sent_on_creation_becomes_via(server, demo_source):
    """Protocol 5.1: the server assigns the id and copies the one sent to ``via``."""
    sent = {**new_annotation(demo_source), "id": "https://elsewhere.example/annotations/9"}
    answer = server.request("POST", server.container, body=sent)
    assert answer.status == 201
    assert answer.json()["id"].startswith(server.container)
    assert answer.json()["via"] == "https://elsewhere.example/annotations/9"


def test_a_deleted_annotation_leaves_the_container(server, annotation_url):
    """Protocol 5.4: the IRI of a deleted annotation is removed from its container."""
    assert server.request("DELETE", annotation_url).status == 204
    doc = server.get(server.container, headers={"Prefer": PREFER.format(IRIS)}).json()
    assert doc["total"] == 4 and annotation_url not in doc["first"]["items"]


def test_options_on_an_annotation_one_cannot_see_is_404(server, annotation_url):
    """An annotation you may not see does not exist, for OPTIONS as for GET."""
    assert server.request("OPTIONS", annotation_url, token=False).status == 404
    assert server.request("GET", annotation_url, token=False).status == 404
    assert server.request("OPTIONS", annotation_url).status == 200
