"""JSON-LD processing with a real processor (PyLD), offline.

PyLD would fetch the W3C contexts over the network; its document loader here serves the copies
vendored in tests/vendor/w3c-jsonld-contexts/ (with their licence) and refuses anything else, so
a document that needs another remote context fails loudly instead of reaching out.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from pyld import jsonld

from annotations.w3c import ANNO_CONTEXT, LDP_CONTEXT

CONTEXTS = Path(settings.BASE_DIR) / "tests" / "vendor" / "w3c-jsonld-contexts"
SERVED = {ANNO_CONTEXT: "anno.jsonld", LDP_CONTEXT: "ldp.jsonld"}
MODES = ("json-ld-1.0", "json-ld-1.1")


@cache
def _context_document(url: str) -> dict[str, Any]:
    return json.loads((CONTEXTS / SERVED[url]).read_text())


def load_vendored_context(url: str, options: dict | None = None) -> dict[str, Any]:
    if url not in SERVED:
        raise jsonld.JsonLdError(
            f"No vendored copy of {url}: the tests never fetch a context from the network.",
            "jsonld.LoadDocumentError",
            code="loading document failed",
        )
    return {"contextUrl": None, "documentUrl": url, "document": _context_document(url)}


def expand(doc: Any, mode: str) -> list[dict[str, Any]]:
    """The document expanded by PyLD in ``mode`` (json-ld-1.0 or json-ld-1.1)."""
    return jsonld.expand(doc, {"documentLoader": load_vendored_context, "processingMode": mode})


def relative_iris(expanded: Any) -> list[str]:
    """Every @id or @type in an expanded document that is not an absolute IRI (or a blank node).

    Expansion keeps what it cannot map as a relative IRI, and RDF conversion then drops the
    statement: an unmapped type or IRI would vanish for every linked-data consumer.
    """
    found: list[str] = []
    if isinstance(expanded, dict):
        for key, value in expanded.items():
            if key in ("@id", "@type"):
                for iri in value if isinstance(value, list) else [value]:
                    if isinstance(iri, str) and ":" not in iri:
                        found.append(iri)
            elif key != "@value":
                found.extend(relative_iris(value))
    elif isinstance(expanded, list):
        for item in expanded:
            found.extend(relative_iris(item))
    return found


def values(node: dict[str, Any], iri: str) -> list[Any]:
    """The values of property ``iri`` of an expanded node: @value or @id, lists unrolled."""
    out: list[Any] = []
    for item in node.get(iri, []):
        if "@list" in item:
            out.extend(i.get("@value", i.get("@id")) for i in item["@list"])
        else:
            out.append(item.get("@value", item.get("@id", item)))
    return out


def one(node: dict[str, Any], iri: str) -> Any:
    found = node.get(iri, [])
    assert len(found) == 1, f"expected one {iri} in {node}"
    return found[0]
