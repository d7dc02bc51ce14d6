"""CloudEvents over HTTP as the router carries them: read either mode, write binary mode.

The router keeps an event as its context attributes (all strings, as CESQL and the HTTP
binding see them) plus the data as the exact bytes received, so what a subscriber gets is
byte for byte what the producer sent. The cloudevents SDK is not used here: it decodes JSON
data and re-serialises it, and it raises a variety of exceptions on bad input where the
ingress needs one reason to put in a 400.

Header values pass through unchanged (the Python SDK neither percent-encodes nor decodes
them); a value that cannot travel in a header as is (non-ASCII or control characters, which
only structured mode can carry in) is percent-encoded as the HTTP binding specifies.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")

_NAME = re.compile(r"[a-z0-9]+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:[Zz]|[+-]\d{2}:\d{2})"
)


class WireError(ValueError):
    """Why a request or response is not an acceptable CloudEvent (the 400 reason)."""


@dataclass(frozen=True)
class Event:
    attributes: Mapping[str, str]
    data: bytes | None

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")

    def with_extensions(self, extensions: Mapping[str, str]) -> Event:
        return Event({**self.attributes, **extensions}, self.data)


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether a message (lower-case header names) claims to carry a CloudEvent."""
    return "ce-specversion" in headers or _media_type(headers.get("content-type")) == STRUCTURED


def parse(headers: Mapping[str, str], body: bytes) -> Event:
    """An event from an HTTP message in binary or structured mode.

    `headers` maps lower-case names to values decoded as ISO-8859-1 (what http.server and
    the raw httpx headers give); values are re-read as UTF-8 where they are valid UTF-8.
    """
    media_type = _media_type(headers.get("content-type"))
    if "ce-specversion" in headers:
        return _binary(headers, body)
    if media_type == STRUCTURED:
        return _structured(body)
    if media_type == BATCH:
        raise WireError("batched CloudEvents are not supported; send one event per request")
    raise WireError(
        "not a CloudEvent: no ce-specversion header (binary mode) and the content type is "
        f"not {STRUCTURED} (structured mode)"
    )


def binary(event: Event) -> tuple[list[tuple[str, bytes]], bytes]:
    """Headers and body of the binary-mode HTTP message."""
    headers: list[tuple[str, bytes]] = []
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers.append(("content-type", _header_value(value)))
        else:
            headers.append((f"ce-{name}", _header_value(value)))
    return headers, event.data or b""


def structured(event: Event) -> dict:
    """The event as a structured-mode JSON document (for listings and logs)."""
    document: dict = dict(event.attributes)
    if event.data is not None:
        if _is_json(event.attributes.get("datacontenttype")):
            try:
                document["data"] = json.loads(event.data)
                return document
            except ValueError:
                pass
        document["data_base64"] = base64.b64encode(event.data).decode("ascii")
    return document


def header_pairs(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased name -> ISO-8859-1 value for raw header pairs; the first value wins."""
    result: dict[str, str] = {}
    for name, value in raw:
        result.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return result


# -- binary mode ---------------------------------------------------------------------------


def _binary(headers: Mapping[str, str], body: bytes) -> Event:
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        if not name.startswith("ce-"):
            continue
        attribute = name[3:]
        if not _NAME.fullmatch(attribute):
            raise WireError(f"header {name}: attribute names are lower-case letters and digits")
        attributes[attribute] = _from_header(value)
    content_type = headers.get("content-type")
    # The Content-Type header is the datacontenttype in binary mode.
    if content_type:
        attributes["datacontenttype"] = _from_header(content_type)
    validate(attributes)
    return Event(attributes, body if body else None)


def _from_header(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


# -- structured mode -----------------------------------------------------------------------


def _structured(body: bytes) -> Event:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise WireError(f"structured-mode body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise WireError("structured-mode body must be a JSON object")
    if "data" in document and "data_base64" in document:
        raise WireError("an event carries either data or data_base64, not both")
    attributes: dict[str, str] = {}
    for name, value in document.items():
        if name in ("data", "data_base64") or value is None:
            continue
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise WireError(f"attribute {name!r}: names are lower-case letters and digits")
        if isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        elif isinstance(value, int):
            attributes[name] = str(value)
        elif isinstance(value, str):
            attributes[name] = value
        else:
            raise WireError(f"attribute {name!r} must be a string, an integer or a boolean")
    data: bytes | None = None
    if document.get("data_base64") is not None:
        encoded = document["data_base64"]
        if not isinstance(encoded, str):
            raise WireError("data_base64 must be a string")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise WireError("data_base64 is not valid base64") from None
    elif "data" in document and document["data"] is not None:
        value = document["data"]
        content_type = attributes.get("datacontenttype")
        if content_type is None:
            # The JSON format implies JSON data; say so, since binary mode needs the header.
            attributes["datacontenttype"] = content_type = "application/json"
        if isinstance(value, str) and not _is_json(content_type):
            data = value.encode("utf-8")
        else:
            data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    validate(attributes)
    return Event(attributes, data)


# -- shared --------------------------------------------------------------------------------


def validate(attributes: Mapping[str, str]) -> None:
    """Raises WireError when the context attributes do not make a valid CloudEvent 1.0."""
    for name in attributes:
        if not _NAME.fullmatch(name):
            raise WireError(f"attribute {name!r}: names are lower-case letters and digits")
    version = attributes.get("specversion")
    if version is None:
        raise WireError("missing required attribute specversion")
    if version != "1.0":
        raise WireError(f"specversion {version!r} is not supported (1.0 is)")
    for name in REQUIRED[1:]:
        if not attributes.get(name):
            raise WireError(f"missing required attribute {name}")
    time = attributes.get("time")
    if time is not None and not _valid_time(time):
        raise WireError(f"time {time!r} is not an RFC 3339 timestamp")


def _valid_time(text: str) -> bool:
    match = _RFC3339.fullmatch(text)
    if not match:
        return False
    normalised = text.replace("z", "Z").replace("t", "T").replace("Z", "+00:00")
    if match[1] and len(match[1]) > 6:  # datetime keeps microseconds only
        normalised = normalised.replace("." + match[1], "." + match[1][:6])
    try:
        datetime.fromisoformat(normalised)
    except ValueError:
        return False
    return True


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media in ("application/json", "text/json") or media.endswith("+json")


_PLAIN = {c for c in range(0x21, 0x7F)} | {0x20}


def _header_value(value: str) -> bytes:
    if all(ord(c) in _PLAIN for c in value):
        return value.encode("ascii")
    # Percent-encode space, '"', '%' and everything outside printable ASCII (UTF-8 bytes).
    out = []
    for byte in value.encode("utf-8"):
        if 0x21 <= byte <= 0x7E and byte not in (0x22, 0x25):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out).encode("ascii")
