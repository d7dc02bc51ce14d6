"""Hypothesis strategies for the queries prip documents (shared/design/ODATA.md): valid
`$filter` expressions built from its grammar, valid values of every query option, and
mutations of them. A valid query must answer 200; a mutated one anything but a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

STRING_PROPERTIES = ("Name", "ContentType")
DATE_PROPERTIES = ("PublicationDate", "OriginDate", "ModificationDate", "EvictionDate",
                   "ContentDate/Start", "ContentDate/End")
SORTABLE = ("Name", "Id", "ContentType", "ContentLength", *DATE_PROPERTIES, "Online")
SELECTABLE = ("Id", "Name", "ContentType", "ContentLength", "OriginDate", "PublicationDate",
              "ModificationDate", "EvictionDate", "Online", "Checksum", "ContentDate")
ATTRIBUTES = {
    "String": ("productType", "platformShortName", "platformSerialIdentifier",
               "processingCenter", "fileClass", "noSuchAttribute"),
    "DateTimeOffset": ("beginningDateTime", "endingDateTime", "processingDate",
                       "generationDate"),
    "Integer": ("instrumentConfigurationId", "orbitNumber"),
    "Double": ("cloudCover",),
    "Boolean": ("isRepaired",),
}
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")

# Any text, quotes included (doubled inside the literal), no lone surrogates.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
STRING_LITERAL = _TEXT.map(lambda t: "'" + t.replace("'", "''") + "'")
_INSTANTS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30),
                         timezones=st.just(UTC))


def _date_text(moment: datetime, fraction: bool, quoted: bool) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    text += f".{moment.microsecond // 1000:03d}Z" if fraction else "Z"
    return f"'{text}'" if quoted else text


DATE_LITERAL = st.builds(_date_text, _INSTANTS, st.booleans(), st.booleans())
INT_LITERAL = st.integers(-(2**63), 2**63 - 1).map(str)
GUID_LITERAL = st.uuids().map(str)


def _compare(prop: str, op: str, value: str) -> str:
    return f"{prop} {op} {value}"


_NAME_FUNCTIONS = st.builds(lambda f, p, v: f"{f}({p},{v})",
                            st.sampled_from(["contains", "startswith", "endswith"]),
                            st.sampled_from(STRING_PROPERTIES), STRING_LITERAL)
_COMPARE_STRING = st.builds(_compare, st.sampled_from(STRING_PROPERTIES),
                            st.sampled_from(["eq", "ne"]), STRING_LITERAL)
_COMPARE_DATE = st.builds(_compare, st.sampled_from(DATE_PROPERTIES),
                          st.sampled_from(COMPARISONS), DATE_LITERAL)
_COMPARE_LENGTH = st.builds(_compare, st.just("ContentLength"), st.sampled_from(COMPARISONS),
                            INT_LITERAL)
_COMPARE_ONLINE = st.builds(_compare, st.just("Online"), st.sampled_from(["eq", "ne"]),
                            st.sampled_from(["true", "false"]))
_COMPARE_ID = st.builds(_compare, st.just("Id"), st.sampled_from(["eq", "ne"]), GUID_LITERAL)
_IN_NAME = st.lists(STRING_LITERAL, min_size=1, max_size=4).map(
    lambda items: f"Name in ({','.join(items)})")
_IN_LENGTH = st.lists(st.integers(0, 10**12).map(str), min_size=1, max_size=4).map(
    lambda items: f"ContentLength in ({', '.join(items)})")
_COLLECTION = st.just("Collection/Name eq 'SENTINEL-1'")

_ATTRIBUTE_VALUE = {
    "String": (["eq", "ne"], STRING_LITERAL),
    "DateTimeOffset": (list(COMPARISONS), DATE_LITERAL),
    "Integer": (list(COMPARISONS), st.integers(-(10**9), 10**9).map(str)),
    "Double": (list(COMPARISONS), st.floats(-1e9, 1e9, allow_nan=False).map(lambda f: f"{f:.3f}")),
    "Boolean": (["eq", "ne"], st.sampled_from(["true", "false"])),
}


@st.composite
def _attribute(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(ATTRIBUTES)))
    name = draw(st.sampled_from(ATTRIBUTES[kind]))
    ops, values = _ATTRIBUTE_VALUE[kind]
    t = f"OData.CSC.{kind}Attribute"
    return (f"Attributes/{t}/any(att:att/Name eq '{name}' and "
            f"att/{t}/Value {draw(st.sampled_from(ops))} {draw(values)})")


ATOM = st.one_of(_NAME_FUNCTIONS, _COMPARE_STRING, _COMPARE_DATE, _COMPARE_LENGTH,
                 _COMPARE_ONLINE, _COMPARE_ID, _IN_NAME, _IN_LENGTH, _COLLECTION, _attribute())
FILTER = st.recursive(
    ATOM,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        inner.map(lambda a: f"not ({a})"),
        inner.map(lambda a: f"({a})"),
    ),
    max_leaves=6,
)
ORDERBY = st.lists(
    st.builds(lambda p, d: f"{p}{d}", st.sampled_from(SORTABLE),
              st.sampled_from(["", " asc", " desc"])),
    min_size=1, max_size=4, unique_by=lambda k: k.split(" ")[0]).map(",".join)
TRUE_FALSE = st.sampled_from(["true", "false", "TRUE", "False", " true "])


@st.composite
def valid_options(draw: st.DrawFn) -> dict[str, str]:
    """A valid set of Products query options (each present or not)."""
    options: dict[str, str] = {}
    chosen = {
        "$filter": FILTER,
        "$orderby": ORDERBY,
        "$top": st.integers(0, 1000).map(str),
        "$skip": st.integers(0, 10**6).map(str),
        "$count": TRUE_FALSE,
        "$expand": st.sampled_from(["Attributes", "Assets", "Attributes,Assets"]),
        "$select": st.lists(st.sampled_from(SELECTABLE), min_size=1, max_size=4,
                            unique=True).map(",".join),
        "$format": st.sampled_from(["json", "application/json",
                                    "application/json;odata.metadata=minimal"]),
    }
    for name, strategy in chosen.items():
        if draw(st.booleans()):
            options[name] = draw(strategy)
    return options


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with one character inserted, deleted or replaced: the typos and truncations
    of real clients, and the probes of others."""
    if not text:
        return draw(_TEXT)
    at = draw(st.integers(0, len(text) - 1))
    char = draw(st.one_of(st.sampled_from(list("()',/ $@:\\\"%") + ["''", "\x00", "é"]),
                          st.characters(blacklist_categories=("Cs",))))
    how = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
    if how == "insert":
        return text[:at] + char + text[at:]
    if how == "delete":
        return text[:at] + text[at + 1:]
    if how == "replace":
        return text[:at] + char + text[at + 1:]
    return text[:at]


@st.composite
def mutated_options(draw: st.DrawFn) -> dict[str, str]:
    options = draw(valid_options())
    if not options:
        return {draw(st.sampled_from(["$filter", "$top", "$count"])): draw(_TEXT)}
    name = draw(st.sampled_from(sorted(options)))
    if draw(st.integers(0, 4)) == 0:  # now and then the option's name itself
        options[draw(mutated(name))] = options.pop(name)
    else:
        options[name] = draw(mutated(options[name]))
    return options
