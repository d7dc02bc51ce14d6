"""Product JSON, exactly as PRIP/AUXIP clients read it (see design/ODATA.md): property
names and order of the ICD, dates in milliseconds with `Z`, open ends as
9999-12-31T23:59:59.999Z, Attributes only when expanded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import quote, urlencode

from shared.core.attributes import to_odata
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


def next_link(base: str, params: Sequence[tuple[str, str]], options: QueryOptions) -> str:
    """The same request one page further: every option kept but `$skip`, and never the
    `token` parameter (a link is copied around; the token must not travel with it)."""
    kept = [(k, v) for k, v in params if k.lower() != "$skip" and k != "token"]
    kept.append(("$skip", str(options.skip + options.top)))
    if not any(k.lower() == "$top" for k, _ in kept):
        kept.append(("$top", str(options.top)))
    # quote, not quote_plus: %20 for spaces, since some OData clients read '+' literally.
    return f"{base}?{urlencode(kept, safe=_LINK_SAFE, quote_via=quote)}"
