"""Typed product attributes, as the OData interface exposes them.

The catalogue keeps attributes in one jsonb object (name -> value). The OData type of a
value comes from this table; names not listed take the type of their JSON value.
DateTimeOffset values are stored as canonical strings (`2017-10-17T08:00:00.000000Z`),
whose lexicographic order is their chronological order, so they compare correctly in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum

from shared.core import s1time

Value = str | int | float | bool | datetime


class AttributeType(StrEnum):
    STRING = "String"
    INTEGER = "Integer"
    DOUBLE = "Double"
    DATETIME = "DateTimeOffset"
    BOOLEAN = "Boolean"

    @property
    def odata_type(self) -> str:
        return f"OData.CSC.{self.value}Attribute"


KNOWN: dict[str, AttributeType] = {
    "productType": AttributeType.STRING,
    "platformShortName": AttributeType.STRING,
    "platformSerialIdentifier": AttributeType.STRING,
    "processingCenter": AttributeType.STRING,
    "processorName": AttributeType.STRING,
    "processorVersion": AttributeType.STRING,
    "fileClass": AttributeType.STRING,
    "fileVersion": AttributeType.STRING,
    "fileDescription": AttributeType.STRING,
    "beginningDateTime": AttributeType.DATETIME,
    "endingDateTime": AttributeType.DATETIME,
    "processingDate": AttributeType.DATETIME,
    "generationDate": AttributeType.DATETIME,
    "instrumentConfigurationId": AttributeType.INTEGER,
}


def type_of(name: str, stored: object) -> AttributeType:
    known = KNOWN.get(name)
    if known is not None:
        return known
    if isinstance(stored, bool):
        return AttributeType.BOOLEAN
    if isinstance(stored, int):
        return AttributeType.INTEGER
    if isinstance(stored, float):
        return AttributeType.DOUBLE
    return AttributeType.STRING


def to_stored(attributes: dict[str, Value]) -> dict[str, str | int | float | bool]:
    """The jsonb form: datetimes become canonical strings, everything else as is."""
    stored: dict[str, str | int | float | bool] = {}
    for name, value in attributes.items():
        if isinstance(value, datetime):
            stored[name] = s1time.format_canonical(value)
        else:
            stored[name] = value
    return stored


# Each type's `@odata.type` and `ValueType` texts, made once: a page of products writes
# them ~15 times a row, and an enum member's properties are slow to read.
TAGS = {kind: (f"#{kind.odata_type}", str(kind.value)) for kind in AttributeType}


def entries(stored: dict[str, object]) -> Iterator[tuple[AttributeType, str, object]]:
    """(type, name, OData value) of each attribute, sorted by name for stable output."""
    for name in sorted(stored):
        value = stored[name]
        kind = type_of(name, value)
        if kind is AttributeType.DATETIME and isinstance(value, str):
            value = s1time.canonical_to_odata(value)
        yield kind, name, value


def to_odata(stored: dict[str, object]) -> list[dict[str, object]]:
    """The `Attributes` array of a Product."""
    out = []
    for kind, name, value in entries(stored):
        odata_type, value_type = TAGS[kind]
        out.append({
            "@odata.type": odata_type,
            "Name": name,
            "ValueType": value_type,
            "Value": value,
        })
    return out
