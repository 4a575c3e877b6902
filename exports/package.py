"""Reading a BagIt package someone hands us (a zip or a directory), defensively.

Nothing is ever unpacked to disk: members are read straight from the zip. Still, a package
whose paths climb out of the bag (``../``) or are absolute is refused outright, and so is a
zip bomb: the sizes the zip declares are checked before anything is read (in total, and the
compression ratio of each large member), and the bytes actually inflated are counted while
reading, so a zip that understates its sizes is caught too.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

READ_CHUNK = 1024 * 1024
# Small members compress unevenly (a CSV of repeated tags): the ratio is judged on large ones.
RATIO_CHECKED_ABOVE = 1024 * 1024


class PackageError(Exception):
    """A package that cannot be imported; the message names the problem for the person."""


def check_member_path(name: str) -> str:
    """The path of a member, refused if it is absolute or climbs out of the bag."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise PackageError(f"The package contains an absolute path ({name!r}); refused.")
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        raise PackageError(f"The package contains a path that leaves the bag ({name!r}); refused.")
    return name


class Package:
    """The files of a bag, by their path inside it (``data/...``, ``bagit.txt``)."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def chunks(self, name: str) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_bytes(self, name: str) -> bytes:
        if name not in self.names():
            raise PackageError(f"The package has no {name}.")
        return b"".join(self.chunks(name))

    def sha256(self, name: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        for chunk in self.chunks(name):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size


class ZipPackage(Package):
    def __init__(self, file: str | Path | IO[bytes]) -> None:
        try:
            self.zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise PackageError(f"The package is not a readable zip file ({exc}).") from None
        except zipfile.LargeZipFile as exc:
            raise PackageError(f"The package is not a readable zip file ({exc}).") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        infos = [i for i in self.zip.infolist() if not i.is_dir()]
        for info in infos:
            check_member_path(info.filename)
        # A bag zipped with its folder (mybag/bagit.txt) is read from inside that folder.
        prefix = ""
        if not any(i.filename == "bagit.txt" for i in infos):
            tops = {i.filename.split("/", 1)[0] for i in infos}
            if len(tops) == 1 and any(i.filename.endswith("/bagit.txt") for i in infos):
                prefix = tops.pop() + "/"
        for info in infos:
            if not info.filename.startswith(prefix):
                continue
            total += info.file_size
            ratio_limit = settings.SCHOLION_IMPORT_MAX_RATIO
            if info.file_size > RATIO_CHECKED_ABOVE and info.file_size > ratio_limit * max(
                info.compress_size, 1
            ):
                ratio = info.file_size // max(info.compress_size, 1)
                raise PackageError(
                    f"{info.filename} would inflate {ratio:,}"
                    f" times (more than {ratio_limit}): refused as a possible zip bomb."
                )
            self.members[info.filename[len(prefix) :]] = info
        limit = settings.SCHOLION_IMPORT_MAX_BYTES
        if total > limit:
            raise PackageError(
                f"The package would unpack to {total:,} bytes, more than the limit of {limit:,}"
                " (SCHOLION_IMPORT_MAX_BYTES): refused."
            )
        self.inflated = 0  # every byte read so far, against the same limit

    def names(self) -> list[str]:
        return list(self.members)

    def chunks(self, name: str) -> Iterator[bytes]:
        info = self.members.get(name)
        if info is None:
            raise PackageError(f"The package has no {name}.")
        read = 0
        limit = settings.SCHOLION_IMPORT_MAX_BYTES
        try:
            with self.zip.open(info) as fh:
                while chunk := fh.read(READ_CHUNK):
                    read += len(chunk)
                    self.inflated += len(chunk)
                    if read > info.file_size:
                        raise PackageError(
                            f"{name} inflates to more than the {info.file_size:,} bytes its"
                            " header declares: refused as a possible zip bomb."
                        )
                    if self.inflated > 3 * limit:  # verified, then imported: read up to 3 times
                        raise PackageError(
                            f"Reading the package inflated more than {3 * limit:,} bytes: refused."
                        )
                    yield chunk
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
                raise PackageError(f"{name} is damaged in the zip ({exc}).") from None
            raise PackageError(f"{name} cannot be read from the zip ({exc}).") from None

    def close(self) -> None:
        self.zip.close()


class DirectoryPackage(Package):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.members: dict[str, Path] = {}
        total = 0
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root).as_posix()
            check_member_path(relative)
            if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                raise PackageError(f"{relative} is a link that leaves the bag; refused.")
            if path.is_file():
                total += path.stat().st_size
                self.members[relative] = path
        if total > settings.SCHOLION_IMPORT_MAX_BYTES:
            raise PackageError(
                f"The package holds {total:,} bytes, more than the limit of"
                f" {settings.SCHOLION_IMPORT_MAX_BYTES:,} (SCHOLION_IMPORT_MAX_BYTES): refused."
            )

    def names(self) -> list[str]:
        return list(self.members)

    def chunks(self, name: str) -> Iterator[bytes]:
        path = self.members.get(name)
        if path is None:
            raise PackageError(f"The package has no {name}.")
        with path.open("rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                yield chunk


def open_package(source: str | Path | IO[bytes]) -> Package:
    """A zip file (path or open file) or a bag directory."""
    if isinstance(source, str | Path) and Path(source).is_dir():
        return DirectoryPackage(source)
    return ZipPackage(source)


def _manifest_entries(package: Package, name: str) -> dict[str, str]:
    text = package.read_bytes(name).decode("utf-8", "replace")
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = re.match(r"^([0-9a-fA-F]{64})\s+(.+)$", line)
        if not match:
            raise PackageError(f"{name}, line {number}, is not “checksum  path”: {line[:80]!r}")
        path = match.group(2).replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
        entries[check_member_path(path)] = match.group(1).lower()
    return entries


def verify_bag(package: Package) -> dict[str, str]:
    """The checks of RFC 8493 that matter here: a bag declaration, every payload file in the
    SHA-256 manifest and every manifest entry present, each file's checksum, the tag
    manifest's checksums (when there is one) and the Payload-Oxum right. Raises
    PackageError naming the first problem; returns each payload file's verified SHA-256."""
    names = set(package.names())
    if "bagit.txt" not in names:
        raise PackageError("This is not a BagIt package: bagit.txt is missing.")
    if "manifest-sha256.txt" not in names:
        raise PackageError("The bag has no manifest-sha256.txt: its files cannot be verified.")
    manifest = _manifest_entries(package, "manifest-sha256.txt")
    payload = {n for n in names if PurePosixPath(n).parts[0] == "data"}
    if missing := sorted(set(manifest) - names):
        raise PackageError(f"The manifest lists files that are not in the bag: {missing[:5]}")
    if unlisted := sorted(payload - set(manifest)):
        raise PackageError(f"Files in the bag are not in its manifest: {unlisted[:5]}")
    octets = 0
    for path in sorted(manifest):
        digest, size = package.sha256(path)
        octets += size
        if digest != manifest[path]:
            raise PackageError(
                f"Checksum mismatch for {path}: the manifest says {manifest[path]}, the file"
                f" has {digest}. The package is damaged or was changed; nothing was imported."
            )
    if "tagmanifest-sha256.txt" in names:
        # Tag files (bag-info.txt, the manifests) are checked too when the bag lists them.
        for path, expected in sorted(_manifest_entries(package, "tagmanifest-sha256.txt").items()):
            if path not in names:
                raise PackageError(f"The tag manifest lists a file that is not in the bag: {path}")
            if (digest := package.sha256(path)[0]) != expected:
                raise PackageError(
                    f"Checksum mismatch for the tag file {path}: the tag manifest says"
                    f" {expected}, the file has {digest}. The package is damaged or was"
                    " changed; nothing was imported."
                )
    if "bag-info.txt" in names:
        info = package.read_bytes("bag-info.txt").decode("utf-8", "replace")
        match = re.search(r"^Payload-Oxum:\s*(\d+)\.(\d+)\s*$", info, re.M)
        if match and (int(match.group(1)), int(match.group(2))) != (octets, len(manifest)):
            raise PackageError(
                f"Payload-Oxum in bag-info.txt says {match.group(1)}.{match.group(2)}; the"
                f" payload is {octets}.{len(manifest)}."
            )
    return manifest
