"""The Product properties a `$filter` or `$orderby` may name, and where each one lives in
the `products` table. Catalogue rows (and the dicts `evaluate` reads) use the same keys."""

from __future__ import annotations

from dataclasses import dataclass

from shared.odata.ast import Kind


@dataclass(frozen=True)
class PropertyInfo:
    path: str
    column: str
    kind: Kind


PROPERTIES: dict[str, PropertyInfo] = {
    info.path: info
    for info in (
        PropertyInfo("Name", "name", Kind.STRING),
        PropertyInfo("Id", "id", Kind.GUID),
        PropertyInfo("ContentType", "content_type", Kind.STRING),
        PropertyInfo("ContentLength", "content_length", Kind.INT64),
        PropertyInfo("OriginDate", "origin_date", Kind.DATETIME),
        PropertyInfo("PublicationDate", "publication_date", Kind.DATETIME),
        PropertyInfo("ModificationDate", "modification_date", Kind.DATETIME),
        PropertyInfo("EvictionDate", "eviction_date", Kind.DATETIME),
        PropertyInfo("Online", "online", Kind.BOOLEAN),
        PropertyInfo("ContentDate/Start", "content_start", Kind.DATETIME),
        PropertyInfo("ContentDate/End", "content_end", Kind.DATETIME),
    )
}

# Copernicus Data Space clients filter on the collection; every auxip product belongs to
# the collection of its platform family, so the value is a constant.
COLLECTION_NAME_PATH = "Collection/Name"
COLLECTION_NAME = "SENTINEL-1"
