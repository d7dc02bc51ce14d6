"""Metadata of Sentinel-1 auxiliary products, read from the product itself.

Sources: the SAFE `manifest.safe`, and the Earth Explorer header of `.EOF`
files. Real files mix namespace styles (SAFE 1.2, CFI default namespace, the
`xfdu` prefix bound to the wrong URI in AUX_TEC/AUX_TRO), so elements are
always matched by local name. XML is parsed with defusedxml only, with DTDs
refused outright: no genuine S1 file has one, and any DTD is the way in for
entity expansion and external entity attacks.

Mission, unit and product type come from the already validated name. Validity
comes from the file when it has one (e.g. MPL_ORBSCT headers start a month
before the date in their name), otherwise from the name.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from shared.core.attacks import Attack
from shared.core.naming import ProductName
from shared.core.s1time import parse_iso

METADATA_INVALID = "metadata_invalid"
# The file describes another product type than its name: not broken XML, but
# a file under the wrong name, the same class of fault as a misnamed archive.
CONTENT_MISMATCH = "content_mismatch"

PLATFORM_SHORT_NAME = "SENTINEL-1"

AttributeValue = str | int | float | bool | datetime


class MetadataError(Exception):
    """`attack`: Attack.XXE for a document with a DTD, entities or external references."""

    def __init__(self, reason: str, detail: str, attack: Attack | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attack = attack


def _invalid(detail: str) -> MetadataError:
    return MetadataError(METADATA_INVALID, detail)


@dataclass(frozen=True)
class DataObject:
    href: str  # relative to the product root, without "./"
    size: int
    md5: str  # lower-case hex


@dataclass(frozen=True)
class ProductMetadata:
    validity_start: datetime
    validity_stop: datetime
    generation: datetime | None
    # A dict keeps the interface simple for callers; not part of the hash.
    attributes: dict[str, AttributeValue] = field(hash=False)
    data_objects: tuple[DataObject, ...] = ()
    # Files the manifest points to without a checksum (support/*.xsd): part of the product.
    references: tuple[str, ...] = ()


def _local(tag: object) -> str:
    # Comments and processing instructions have a non-string tag.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _first(elements: Iterable[Element], name: str) -> Element | None:
    return next((e for e in elements if _local(e.tag) == name), None)


def _text(parent: Element | None, name: str) -> str | None:
    """Stripped text of the first child called `name`; None if absent or empty."""
    if parent is None:
        return None
    child = _first(parent, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise _invalid(f"{what}: {exc}") from None


def _validity(
    start: datetime | None, stop: datetime | None, name: ProductName
) -> tuple[datetime, datetime]:
    start = start or name.validity_start
    stop = stop or name.validity_stop
    if start > stop:
        # The file contradicts itself or its name; the name was checked to be
        # ordered, so it is the safer of the two.
        return name.validity_start, name.validity_stop
    return start, stop


def _check_type(found: str | None, name: ProductName, where: str) -> None:
    if found is not None and found != name.product_type:
        raise MetadataError(
            CONTENT_MISMATCH, f"{where} says {found!r} but the name says {name.product_type!r}"
        )


def _base_attributes(
    name: ProductName, start: datetime, stop: datetime
) -> dict[str, AttributeValue]:
    return {
        "productType": name.product_type,
        "platformShortName": PLATFORM_SHORT_NAME,
        "platformSerialIdentifier": name.unit,
        "beginningDateTime": start,
        "endingDateTime": stop,
    }


def _put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value


def from_name(name: ProductName) -> ProductMetadata:
    """Metadata of a product that has nothing readable but its name (MPL tgz)."""
    attributes = _base_attributes(name, name.validity_start, name.validity_stop)
    _put(attributes, "generationDate", name.generation)
    if name.version is not None:
        # Written as in Earth Explorer headers, so both sources compare equal.
        attributes["fileVersion"] = f"{name.version:04d}"
    return ProductMetadata(
        validity_start=name.validity_start,
        validity_stop=name.validity_stop,
        generation=name.generation,
        attributes=attributes,
    )


# --- SAFE manifest ---------------------------------------------------------

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


def _href(raw: str | None) -> str:
    if not raw:
        raise _invalid("data object without fileLocation href")
    href = raw.strip()
    while href.startswith("./"):
        href = href[2:]
    # Hrefs are later joined to a storage prefix: anything that could leave
    # the product (absolute, "..", URL scheme) is refused here.
    normal = posixpath.normpath(href) if href else ""
    if (
        not href
        or href.startswith("/")
        or "\\" in href
        or ":" in href
        or normal != href
        or normal == ".."
        or normal.startswith("../")
    ):
        raise _invalid(f"data object href is not a plain relative path: {raw!r}")
    return href


def _data_objects(root: Element) -> tuple[DataObject, ...]:
    section = _first(root.iter(), "dataObjectSection")
    if section is None:
        return ()
    objects = []
    for stream in (e for e in section.iter() if _local(e.tag) == "byteStream"):
        location = _first(stream, "fileLocation")
        href = _href(location.get("href") if location is not None else None)
        try:
            size = int(stream.get("size", ""))
        except ValueError:
            detail = f"data object {href}: size {stream.get('size')!r} is not an integer"
            raise _invalid(detail) from None
        if size < 0:
            raise _invalid(f"data object {href}: negative size {size}")
        checksum = _first(stream, "checksum")
        md5 = (checksum.text or "").strip() if checksum is not None else ""
        algorithm = checksum.get("checksumName", "MD5") if checksum is not None else "MD5"
        if algorithm.upper() != "MD5" or not _MD5.fullmatch(md5):
            raise _invalid(f"data object {href}: no MD5 checksum")
        objects.append(DataObject(href=href, size=size, md5=md5.lower()))
    return tuple(objects)


def _references(root: Element, data: tuple[DataObject, ...]) -> tuple[str, ...]:
    listed = {obj.href for obj in data}
    found: list[str] = []
    for element in (e for e in root.iter() if _local(e.tag) == "metadataReference"):
        raw = (element.get("href") or "").strip()
        if not raw or "://" in raw:
            continue  # a reference to something outside the product
        href = _href(raw)
        if href not in listed and href not in found:
            found.append(href)
    return tuple(found)


def from_manifest(xml: bytes, name: ProductName) -> ProductMetadata:
    """Metadata of a SAFE product from the bytes of its `manifest.safe`."""
    try:
        root = DefusedET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MetadataError(METADATA_INVALID, f"manifest refused ({type(exc).__name__}): {exc}",
                            Attack.XXE) from None
    except DefusedET.ParseError as exc:
        raise _invalid(f"manifest is not well-formed XML: {exc}") from None
    if _local(root.tag) != "XFDU":
        raise _invalid(f"manifest root is {_local(root.tag)!r}, expected XFDU")

    info = _first(root.iter(), "standAloneProductInformation")
    _check_type(_text(info, "auxProductType"), name, "manifest auxProductType")
    file_start = _time(_text(info, "validity"), "manifest validity")
    start, stop = _validity(file_start, None, name)
    generation = _time(_text(info, "generation"), "manifest generation") or name.generation

    attributes = _base_attributes(name, start, stop)
    processing = _first(root.iter(), "processing")  # document order: the outermost one
    if processing is not None:
        # The stop of processing is when the product was finished.
        when = processing.get("stop") or processing.get("start")
        _put(attributes, "processingDate", _time(when, "manifest processing time"))
        facility = _first(processing, "facility")
        if facility is not None:
            _put(attributes, "processingCenter", facility.get("site") or facility.get("name"))
            software = _first(facility, "software")
            if software is not None:
                _put(attributes, "processorName", software.get("name"))
                _put(attributes, "processorVersion", software.get("version"))
    _put(attributes, "generationDate", generation)
    config = _text(info, "instrumentConfigurationId")
    if config is not None:
        try:
            attributes["instrumentConfigurationId"] = int(config)
        except ValueError:
            raise _invalid(f"instrumentConfigurationId {config!r} is not an integer") from None

    data_objects = _data_objects(root)
    return ProductMetadata(
        validity_start=start,
        validity_stop=stop,
        generation=generation,
        attributes=attributes,
        data_objects=data_objects,
        references=_references(root, data_objects),
    )


# --- Earth Explorer header -------------------------------------------------


_HEADER_READ = 2048


def _header(stream: BinaryIO) -> Element:
    """The Fixed_Header element, parsed incrementally.

    Parsing stops at the end of the header, and damage further down is not noticed here.
    iterparse reads 16 KiB at a time and parses all of it before it yields: fed in small
    reads, it parses little more than the header (~1 KiB) instead of the ~30 orbit
    vectors that follow it in the same block.
    """
    events: Iterator[tuple[str, Element]] = DefusedET.iterparse(
        _SmallReads(stream), events=("start", "end"), forbid_dtd=True
    )
    path: list[str] = []
    fixed: Element | None = None
    try:
        for event, element in events:
            local = _local(element.tag)
            if event == "start":
                path.append(local)
                if len(path) == 1 and local != "Earth_Explorer_File":
                    raise _invalid(f"root element is {local!r}, expected Earth_Explorer_File")
                if local == "Data_Block":
                    break
                continue
            if path == ["Earth_Explorer_File", "Earth_Explorer_Header", "Fixed_Header"]:
                fixed = element
            path.pop()
            if local == "Earth_Explorer_Header":
                break
    except DefusedXmlException as exc:
        raise MetadataError(METADATA_INVALID, f"EOF refused ({type(exc).__name__}): {exc}",
                            Attack.XXE) from None
    except DefusedET.ParseError as exc:
        raise _invalid(f"EOF header is not well-formed or truncated: {exc}") from None
    if fixed is None:
        raise _invalid("no Earth_Explorer_Header/Fixed_Header before the data block")
    return fixed


class _SmallReads:
    """A stream whose reads return at most `_HEADER_READ` bytes."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(_HEADER_READ if size < 0 else min(size, _HEADER_READ))


def from_eof(stream: BinaryIO, name: ProductName) -> ProductMetadata:
    """Metadata of an Earth Explorer file (orbit, mission planning) from its header."""
    fixed = _header(stream)
    _check_type(_text(fixed, "File_Type"), name, "header File_Type")
    period = _first(fixed, "Validity_Period")
    source = _first(fixed, "Source")
    start, stop = _validity(
        _time(_text(period, "Validity_Start"), "header Validity_Start"),
        _time(_text(period, "Validity_Stop"), "header Validity_Stop"),
        name,
    )
    created = _time(_text(source, "Creation_Date"), "header Creation_Date")
    generation = created or name.generation

    attributes = _base_attributes(name, start, stop)
    _put(attributes, "processingDate", created)
    _put(attributes, "processingCenter", _text(source, "System"))
    _put(attributes, "processorName", _text(source, "Creator"))
    _put(attributes, "processorVersion", _text(source, "Creator_Version"))
    _put(attributes, "fileClass", _text(fixed, "File_Class"))
    _put(attributes, "fileVersion", _text(fixed, "File_Version"))
    _put(attributes, "fileDescription", _text(fixed, "File_Description"))

    return ProductMetadata(
        validity_start=start,
        validity_stop=stop,
        generation=generation,
        attributes=attributes,
    )
