"""Product JSON, exactly as PRIP/AUXIP clients read it (see design/ODATA.md): property
names and order of the ICD, dates in milliseconds with `Z`, open ends as
9999-12-31T23:59:59.999Z, Attributes only when expanded.

`product` builds the dict `json.dumps` writes; a page of products (`collection_text`) is
written straight to text instead, the same bytes (tests/prip/test_product_text.py pins
them to `json.dumps` of `collection`) at a quarter of the CPU: a page of 50-100 products
was the largest cost of a listing after the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import quote, urlencode

from shared.core.attributes import TAGS, entries, to_odata
from shared.core.s1time import OPEN_END, format_odata
from shared.odata import QueryOptions

CONTEXT = "$metadata#Products"
ENTITY_CONTEXT = "$metadata#Products/$entity"
KEPT = format_odata(OPEN_END)  # "9999-12-31T23:59:59.999Z"
_LINK_SAFE = "$/,()':"  # readable in a nextLink, and unambiguous in a query string


def _date(value: object) -> str | None:
    return format_odata(value) if isinstance(value, datetime) else None


def product(row: Mapping[str, object], options: QueryOptions | None = None) -> dict[str, object]:
    """One Product; `options` chooses $select and $expand (None: every property)."""
    eviction = row.get("eviction_date")
    shape: dict[str, object] = {
        "@odata.mediaContentType": row["content_type"],
        "Id": str(row["id"]),
        "Name": row["name"],
        "ContentType": row["content_type"],
        "ContentLength": row["content_length"],
        "OriginDate": _date(row["origin_date"]),
        "PublicationDate": _date(row["publication_date"]),
        "ModificationDate": _date(row["modification_date"]),
        "Online": row["online"],
        "EvictionDate": _date(eviction) if eviction is not None else KEPT,
        "Checksum": list(row.get("checksums") or []),  # type: ignore[call-overload]
        "ContentDate": {"Start": _date(row["content_start"]), "End": _date(row["content_end"])},
    }
    if options is not None and options.select is not None:
        shape = {k: v for k, v in shape.items()
                 if k.startswith("@") or k in options.select}
    if options is not None and options.expand_attributes:
        stored = row.get("attributes")
        shape["Attributes"] = to_odata(stored if isinstance(stored, dict) else {})
    if options is not None and options.expand_assets:
        shape["Assets"] = []  # Copernicus Data Space clients ask; aux files have none
    return shape


def collection(rows: Iterable[Mapping[str, object]], options: QueryOptions, *,
               count: int | None, next_link: str | None) -> dict[str, object]:
    body: dict[str, object] = {"@odata.context": CONTEXT}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = [product(row, options) for row in rows]
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return body


def entity(row: Mapping[str, object], options: QueryOptions) -> dict[str, object]:
    return {"@odata.context": ENTITY_CONTEXT, **product(row, options)}


def attributes(row: Mapping[str, object], product_id: str) -> dict[str, object]:
    stored = row.get("attributes")
    return {"@odata.context": f"$metadata#Products({product_id})/Attributes",
            "value": to_odata(stored if isinstance(stored, dict) else {})}


# What `json.dumps(value, ensure_ascii=False)` writes, with its encoder made once; and the
# C function that encoder writes strings with.
encode = json.JSONEncoder(ensure_ascii=False).encode
_string = json.encoder.encode_basestring
_QUOTED_CONTEXT = _string(CONTEXT)
_QUOTED_KEPT = _string(KEPT)
_QUOTED_TAGS = {kind: (_string(odata_type), _string(value_type))
                for kind, (odata_type, value_type) in TAGS.items()}


def _value_text(value: object) -> str:
    """`encode(value)`, without the encoder for the types a row holds."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)  # type: ignore[arg-type]
    return encode(value)


def _date_text(value: object) -> str:
    return '"' + format_odata(value) + '"' if isinstance(value, datetime) else "null"


def _attributes_text(stored: object) -> str:
    items = []
    for kind, name, value in entries(stored if isinstance(stored, dict) else {}):
        odata_type, value_type = _QUOTED_TAGS[kind]
        items.append(f'{{"@odata.type": {odata_type}, "Name": {_string(name)}, '
                     f'"ValueType": {value_type}, "Value": {_value_text(value)}}}')
    return "[" + ", ".join(items) + "]"


def product_text(row: Mapping[str, object], options: QueryOptions) -> str:
    """`encode(product(row, options))` for options without $select."""
    content_type = _value_text(row["content_type"])
    eviction = row.get("eviction_date")
    checksums = row.get("checksums")
    published, modified = row["publication_date"], row["modification_date"]
    publication = _date_text(published)
    # Equal until a product is changed after its publication: one date formatted, not two
    # (isoformat is most of what a row costs).
    modification = publication if modified == published else _date_text(modified)
    text = (
        f'{{"@odata.mediaContentType": {content_type}, "Id": {_string(str(row["id"]))}, '
        f'"Name": {_value_text(row["name"])}, "ContentType": {content_type}, '
        f'"ContentLength": {_value_text(row["content_length"])}, '
        f'"OriginDate": {_date_text(row["origin_date"])}, '
        f'"PublicationDate": {publication}, "ModificationDate": {modification}, '
        f'"Online": {_value_text(row["online"])}, '
        f'"EvictionDate": {_QUOTED_KEPT if eviction is None else _date_text(eviction)}, '
        f'"Checksum": {encode(list(checksums)) if checksums else "[]"}, '  # type: ignore[call-overload]
        f'"ContentDate": {{"Start": {_date_text(row["content_start"])}, '
        f'"End": {_date_text(row["content_end"])}}}'
    )
    if options.expand_attributes:
        text += ', "Attributes": ' + _attributes_text(row.get("attributes"))
    if options.expand_assets:
        text += ', "Assets": []'
    return text + "}"


def collection_text(rows: Iterable[Mapping[str, object]], options: QueryOptions, *,
                    count: int | None, next_link: str | None) -> str:
    """`encode(collection(...))`."""
    if options.select is not None:
        return encode(collection(rows, options, count=count, next_link=next_link))
    text = '{"@odata.context": ' + _QUOTED_CONTEXT
    if count is not None:
        text += ', "@odata.count": ' + _value_text(count)
    text += ', "value": [' + ", ".join([product_text(row, options) for row in rows]) + "]"
    if next_link is not None:
        text += ', "@odata.nextLink": ' + _string(next_link)
    return text + "}"


def next_link(base: str, params: Sequence[tuple[str, str]], options: QueryOptions) -> str:
    """The same request one page further: every option kept but `$skip`, and never the
    `token` parameter (a link is copied around; the token must not travel with it)."""
    kept = [(k, v) for k, v in params if k.lower() != "$skip" and k != "token"]
    kept.append(("$skip", str(options.skip + options.top)))
    if not any(k.lower() == "$top" for k, _ in kept):
        kept.append(("$top", str(options.top)))
    # quote, not quote_plus: %20 for spaces, since some OData clients read '+' literally.
    return f"{base}?{urlencode(kept, safe=_LINK_SAFE, quote_via=quote)}"
