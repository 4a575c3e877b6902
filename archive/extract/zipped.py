"""Word (DOCX) and EPUB files: zip archives of XML, opened with limits before a byte is unpacked.

Both formats are untrusted zip archives. Before any entry is read, the archive's directory is
checked: how many entries it holds and how much they would unpack to (a zip bomb is refused
whole), that no entry is encrypted, and that no entry is named outside the archive (an absolute
path, "..", a backslash): nothing is ever written to disk, but such a name is a file built to
attack an unpacker, not a document. An entry is read no further than the size its directory
declares (``zipfile`` stops there and checks the CRC), so the declared total bounds memory.

XML is parsed by lxml without loading a DTD, substituting an entity or touching the network;
a part that declares entities (the "billion laughs", an external entity naming a local file) is
refused rather than read with holes in it.

A web request reads the file in a child process it stops when the request's time is up
(``budget``): lxml and python-docx cannot be interrupted from within, and a long document can
take longer than a request may run. The worker and the command line read it in-process.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import IO

from lxml import etree

from archive.extract import Extraction, ExtractionError, read_in_child, reply_from_child

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EPUB_TYPE = "application/epub+zip"
NAMES = {DOCX_TYPE: "Word document (DOCX)", EPUB_TYPE: "EPUB book"}
# What the reading depends on besides the bytes: handed to a child process as its settings.
LIMIT_SETTINGS = (
    "SCHOLION_MAX_ZIP_ENTRIES",
    "SCHOLION_MAX_UNZIPPED_BYTES",
    "SCHOLION_MAX_TEXT_BYTES",
)


class Package:
    """A checked zip archive; ``what`` names it in messages ("EPUB book")."""

    def __init__(self, file: IO[bytes]) -> None:
        from django.conf import settings

        self.what = "zip archive"
        self.file = file
        file.seek(0)
        try:
            self.zip = zipfile.ZipFile(file)
            entries = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise ExtractionError(
                f"This file looks like a zip archive (a Word document or an EPUB book is one)"
                f" but could not be read ({exc}): it may be damaged or truncated. Nothing was"
                " archived."
            ) from None
        self.names = {info.filename for info in entries}
        self.what = NAMES.get(self.media_type(), self.what)
        max_entries = settings.SCHOLION_MAX_ZIP_ENTRIES
        if len(entries) > max_entries:
            raise ExtractionError(
                f"The {self.what} holds {len(entries):,} files, more than the {max_entries:,}"
                " Scholion unpacks (SCHOLION_MAX_ZIP_ENTRIES), so nothing was archived."
            )
        max_bytes = settings.SCHOLION_MAX_UNZIPPED_BYTES
        total = sum(info.file_size for info in entries)
        if total > max_bytes:
            raise ExtractionError(
                f"The {self.what} would unpack to {total / 1024 / 1024:,.0f} MiB, more than the"
                f" {max_bytes / 1024 / 1024:,.0f} MiB Scholion unpacks"
                " (SCHOLION_MAX_UNZIPPED_BYTES): it may be a zip bomb. Nothing was archived."
            )
        for info in entries:
            if info.flag_bits & 0x1:
                raise encrypted(self.what)
            if not safe_name(info.filename):
                raise ExtractionError(
                    f"The {self.what} holds a file named outside the archive"
                    f" ({info.filename[:100]!r}), as a file built to attack an unpacker does,"
                    " so nothing was archived."
                )

    def media_type(self) -> str:
        if "mimetype" in self.names:
            try:
                mimetype = self.zip.open("mimetype").read(100).strip()
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
                mimetype = b""
            if mimetype == EPUB_TYPE.encode():
                return EPUB_TYPE
        if "word/document.xml" in self.names:
            return DOCX_TYPE
        return "application/zip"

    def read(self, name: str) -> bytes:
        try:
            with self.zip.open(name) as member:
                return member.read()
        except KeyError:
            raise self.unreadable(f"{name} is missing") from None
        except RuntimeError:  # zipfile's word for an encrypted entry
            raise encrypted(self.what) from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise self.unreadable(f"{name}: {exc}") from None

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name), name, self.what)

    def unreadable(self, reason: str) -> ExtractionError:
        return ExtractionError(
            f"This file looks like a {self.what} but could not be read ({reason}): it may be"
            " damaged or truncated. Nothing was archived."
        )


def encrypted(what: str) -> ExtractionError:
    return ExtractionError(
        f"The {what} is encrypted (protected by a password or DRM), so its text cannot be"
        " read. Nothing was archived; archive a copy without the protection."
    )


def safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if len(name) > 1 and name[1] == ":":  # a drive letter
        return False
    return ".." not in name.split("/")


def inside(base: str, href: str) -> str | None:
    """The entry an href relative to the entry ``base`` names, or None when it leads out of
    the archive (or elsewhere: another site, a fragment only)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(parts.path)))
    if joined.startswith(("../", "/")) or joined == "..":
        return None
    return joined


def parse_xml(data: bytes, name: str, what: str) -> etree._Element:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)  # noqa: S320 - no DTD, no entities, no network
    except etree.XMLSyntaxError as exc:
        raise ExtractionError(
            f"This file looks like a {what} but its {name} is not well-formed XML ({exc}):"
            " it may be damaged. Nothing was archived."
        ) from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ExtractionError(
            f"The {what}'s {name} declares XML entities, which Scholion does not expand (they"
            " can read local files or multiply without end), so nothing was archived."
        )
    return root


def extract_package(file: IO[bytes], budget: float | None = None) -> Extraction:
    """The text layer of a Word document or an EPUB book in ``file`` (read from its start).

    ``budget`` (seconds) is what a web request may spend: ``file`` (a real file) is then read
    in a child process, and one not read within the budget raises TooSlowForRequest."""
    if budget is None:
        return read_package(file)
    from django.conf import settings

    return read_in_child(
        "archive.extract.zipped",
        [{name: getattr(settings, name) for name in LIMIT_SETTINGS}],
        file,
        budget,
        "This file looks like a Word document or an EPUB book, but reading it failed"
        " unexpectedly, so nothing was archived.",
    )


def child_main(limits: dict) -> None:
    """Read a zip archive on stdin (see ``extract_package``), with the request's limits."""
    from django.conf import settings

    settings.configure(**limits)
    reply_from_child(lambda data: read_package(io.BytesIO(data)))


def read_package(file: IO[bytes]) -> Extraction:
    """The text layer of a Word document or an EPUB book in ``file``, in this process."""
    from django.conf import settings

    package = Package(file)
    media_type = package.media_type()
    if media_type in (DOCX_TYPE, EPUB_TYPE):
        if media_type == DOCX_TYPE:
            from archive.extract.docx import extract_docx

            extraction = extract_docx(package)
        else:
            from archive.extract.epub import extract_epub

            extraction = extract_epub(package)
        if len(extraction.text) > settings.SCHOLION_MAX_TEXT_BYTES:
            # As a text file that long: kept, without a text layer to read in a browser.
            from archive.extract import NO_TEXT_EXTRACTOR

            extraction.text, extraction.blocks, extraction.divisions = "", [], {}
            extraction.extractor, extraction.extractor_version = NO_TEXT_EXTRACTOR
        return extraction
    from archive.extract import Unsupported, supported_list

    raise Unsupported(
        "This file is a zip archive, but not a Word document (DOCX) or an EPUB book, which"
        f" Scholion cannot archive. Supported types: {supported_list()}."
    )
