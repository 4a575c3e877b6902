"""Formatted references: a CSL item rendered with one of the shipped styles (archive/csl/) by
citeproc-py, made to write what citeproc-js (the processor of Zotero, Mendeley and most
tools researchers check references against) writes for the same item and style.

citeproc-py 0.11 departs from the CSL specification, and from citeproc-js, in a few places
that change the references Scholion shows. Each is corrected here, and the test
tests/test_reference_tools.py compares the result with citeproc-js's own output:

- The en-US locale's ``punctuation-in-quote``: citeproc-py reads the option and never uses
  it, so Chicago wrote ``“Title”.``; American style puts the period inside, ``“Title.”``.
  The quotes and the punctuation after them come from different elements (a title, then
  its group's delimiter), so the rendered entry is corrected (``_punctuation_as_in_us``).
- A substitute's variables are suppressed in the rest of the entry (CSL 1.0.2, cs:substitute):
  citeproc-py suppressed only a ``<text variable>`` named in the substitute itself, so an
  entry without an author, whose title stands in for the author, printed its title twice.
- A ``cs:label`` of a variable the item lacks is not rendered (CSL, cs:label): citeproc-py
  printed "Edition." after every newspaper article.
- A label's ``text-case="title"``: citeproc-py skipped it (it title-cases only text whose
  language it knows is English, and a label's term is in the locale's language), so APA
  wrote "(ed.)" for "(Ed.)".
"""

from __future__ import annotations

import functools
import io
import json
import re
import threading
import warnings
from pathlib import Path

import nh3

CSL_DIR = Path(__file__).resolve().parent / "csl"
STYLES = {"chicago": "chicago-author-date.csl", "apa": "apa.csl"}


@functools.cache
def csl_style(name: str):
    """A shipped CSL style, parsed once per process."""
    from citeproc import CitationStylesStyle
    from lxml import etree

    _agree_with_citeproc_js()
    tree = etree.parse(str(CSL_DIR / STYLES[name]))
    if name == "chicago":
        # citeproc-py 0.11 ignores CSL 1.0.1's initialize="false", so the style-wide
        # initialize-with would shorten given names to initials; Chicago spells them out.
        tree.getroot().attrib.pop("initialize-with", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CitationStylesStyle(io.BytesIO(etree.tostring(tree)), validate=False)


def formatted_reference(item: dict, style: str) -> str:
    """One bibliography entry as (sanitised) HTML: only <i> and <b> survive.

    citeproc-py takes tens of milliseconds per entry and every reading page shows two, so
    entries are remembered per item (a source's metadata changes rarely; a change is a new
    item, hence a new entry)."""
    return _formatted_reference(json.dumps(item, sort_keys=True), style)


@functools.lru_cache(maxsize=2048)
def _formatted_reference(item_json: str, style: str) -> str:
    item = json.loads(item_json)
    from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
    from citeproc.source.json import CiteProcJSON

    item = {**item, "id": "item"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bibliography = CitationStylesBibliography(
            csl_style(style), CiteProcJSON([item]), formatter.html
        )
        bibliography.register(Citation([CitationItem("item")]))
        entries = [str(entry) for entry in bibliography.bibliography()]
    entry = nh3.clean(" ".join(entries), tags={"i", "b"}, attributes={})
    # Both shipped styles are rendered in en-US, whose locale puts punctuation in quotes.
    return _punctuation_as_in_us(entry)


# Closing marks that may stand between a title's last character and the punctuation after
# it: a closing quotation mark and the end of italics or bold.
_CLOSERS = r"(?:”|’|</i>|</b>)"


def _punctuation_as_in_us(entry: str) -> str:
    """American punctuation, as citeproc-js writes it for a locale with punctuation-in-quote:
    a period or comma after a closing quotation mark moves inside it, and one after a title
    that ends in a question or exclamation mark is dropped (“Why Strike?” not “Why Strike?”.)."""
    entry = re.sub(rf"([?!]{_CLOSERS}+)[.,]", r"\1", entry)
    return re.sub(r"([”’]+)([.,])", r"\2\1", entry)


# The variables read by each substitute being rendered, innermost last; per thread, as
# requests may render references at the same time.
_rendering = threading.local()


def _reads() -> list[set[str]]:
    if not hasattr(_rendering, "reads"):
        _rendering.reads = []
    return _rendering.reads


# Elements' tags as lxml names them (citeproc-py keeps suppressed variables by tag).
CSL_TEXT = "{http://purl.org/net/xbiblio/csl}text"
CSL_NAMES = "{http://purl.org/net/xbiblio/csl}names"


@functools.cache
def _agree_with_citeproc_js() -> None:
    """Correct citeproc-py where it departs from CSL (see the module's docstring), once."""
    from citeproc import model
    from citeproc.source import Reference, VariableError

    class RecordingReference(Reference):
        # A reference that notes which variables are read while a substitute renders.
        def __getitem__(self, key):
            value = super().__getitem__(key)
            reads = _reads()
            if reads and value not in (None, "", []):
                reads[-1].add(key.replace("_", "-"))
            return value

    def substitute_render(self, item, context=None, **kwargs):
        text = None
        for child in self.getchildren():
            reference = item.reference
            plain_class = type(reference)
            # A Reference keeps its attributes as its items: set the class past that.
            object.__setattr__(reference, "__class__", RecordingReference)
            _reads().append(set())
            try:
                if isinstance(child, model.Names) and child.name is None:
                    names = self.xpath_search("./parent::cs:names[1]")[0]
                    text = child.render(item, names_context=names, context=context, **kwargs)
                else:
                    text = child.render(item, context=context, **kwargs)
            except VariableError:
                text = None
            finally:
                object.__setattr__(reference, "__class__", plain_class)
                read = _reads().pop()
            if text:
                # Every variable the substitute rendered, not just a <text variable> or
                # <names> named in it: a macro's, a choose's.
                repressed = context.get_layout().repressed
                for tag in (CSL_TEXT, CSL_NAMES):
                    repressed.setdefault(tag, []).extend(read)
                break
        return text

    names_process = model.Names.process

    def names_process_unless_substituted(self, item, names_context=None, context=None, **kw):
        layout_context = context if context is not None else self
        repressed = layout_context.get_layout().repressed.get(CSL_NAMES, [])
        variables = self.get("variable", "").split()
        left = [v for v in variables if v not in repressed]
        if len(left) < len(variables) and not any(
            v.replace("-", "_") in item.reference for v in left
        ):
            raise VariableError
        if names_context is None and self.name is None:
            # A names element in a substitute, however deep (in a choose, say), takes its
            # name and label from the names element it substitutes for.
            enclosing = self.xpath_search("./ancestor::cs:substitute[1]/parent::cs:names[1]")
            names_context = enclosing[0] if enclosing else None
        return names_process(self, item, names_context=names_context, context=context, **kw)

    label_process = model.Label.process

    def label_process_if_variable(self, item, variable=None, plural=None, context=None, **kw):
        # A names element passes its role; a style's own <label variable> is checked here.
        own = self.get("variable") if variable is None else None
        if own is not None and own != "locator" and own.replace("-", "_") not in item.reference:
            return None
        return label_process(self, item, variable, plural, context=context, **kw)

    def label_markup(self, text):
        if text:
            return self.wrap(self.format(self.case(self.strip_periods(text), "en")))
        return None

    model.Substitute.render = substitute_render
    model.Names.process = names_process_unless_substituted
    model.Label.process = label_process_if_variable
    model.Label.markup = label_markup
