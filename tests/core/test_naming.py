import dataclasses
import os
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.core import naming
from shared.core.naming import (
    BUILTIN_TYPES,
    DEFAULT_TYPES,
    MPL,
    NAME_INVALID,
    ORBIT,
    SAFE,
    TYPE_UNKNOWN,
    NameRejected,
    ProductName,
    load_type_table,
    parse,
)
from shared.core.s1time import OPEN_END, UTC

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "real"
WITH_REP_SUP = load_type_table("REP__SUP__=mpl")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Expected values read off each real sample name: (type, unit, start, stop, generation, version)
REAL = {
    "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE":
        ("AUX_CAL", "A", utc(2017, 10, 17, 8), OPEN_END, utc(2017, 10, 13, 10, 12), None),
    "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE":
        ("AUX_INS", "A", utc(2017, 10, 17, 8), OPEN_END, utc(2017, 10, 13, 10, 12, 16), None),
    "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE":
        ("AUX_PP1", "A", utc(2017, 10, 17, 8), OPEN_END, utc(2017, 10, 13, 10, 12, 36), None),
    "S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE":
        ("AUX_PP2", "A", utc(2017, 10, 17, 8), OPEN_END, utc(2017, 10, 13, 10, 12, 54), None),
    "S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE":
        ("AUX_ICE", "", utc(2016, 5, 1, 12), OPEN_END, utc(2016, 5, 2, 4, 36, 7), None),
    "S1__AUX_TEC_V20190805T000000_20190805T235959_G20200210T102615.SAFE":
        ("AUX_TEC", "", utc(2019, 8, 5), utc(2019, 8, 5, 23, 59, 59), utc(2020, 2, 10, 10, 26, 15), None),
    "S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE":
        ("AUX_TRO", "", utc(2019, 8, 5, 18), utc(2019, 8, 5, 23, 59, 59), utc(2020, 5, 18, 8, 45, 34), None),
    "S1__AUX_WAV_V20110801T000000_G20111026T141850.SAFE":
        ("AUX_WAV", "", utc(2011, 8, 1), OPEN_END, utc(2011, 10, 26, 14, 18, 50), None),
    "S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE":
        ("AUX_WND", "", utc(2016, 4, 23, 12), OPEN_END, utc(2016, 4, 22, 6, 0, 59), None),
    "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF":
        ("AUX_RESORB", "A", utc(2017, 12, 13, 10, 27, 37), utc(2017, 12, 13, 13, 45, 7),
         utc(2017, 12, 13, 14, 38, 38), None),
    "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF":
        ("MPL_ORBPRE", "A", utc(2017, 12, 8, 20, 3, 9), utc(2017, 12, 15, 20, 3, 9), None, 1),
    "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0020.EOF":
        ("MPL_ORBSCT", "A", utc(2014, 5, 7, 15, 7, 4), OPEN_END, None, 20),
    "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0024.EOF":
        ("MPL_ORBSCT", "A", utc(2014, 5, 7, 15, 7, 4), OPEN_END, None, 24),
    "S1B_OPER_MPL_ORBSCT_20160425T224606_99999999T999999_0017.EOF":
        ("MPL_ORBSCT", "B", utc(2016, 4, 25, 22, 46, 6), OPEN_END, None, 17),
    # Header File_Name of trimmed_from_real/S1_orbit_example.EOF
    "S1A_OPER_AUX_POEORB_OPOD_20181203T120749_V20181112T225942_20181114T005942.EOF":
        ("AUX_POEORB", "A", utc(2018, 11, 12, 22, 59, 42), utc(2018, 11, 14, 0, 59, 42),
         utc(2018, 12, 3, 12, 7, 49), None),
}
REP_SUP = "S1A_OPER_REP__SUP___20181208T070000_20181208T111500_0001.EOF"
OBMEMC = "S1A_OPER_AUX_OBMEMC_PDMC_20140201T000000.xml"


def test_every_sample_is_covered():
    on_disk = {p.name for p in SAMPLES.iterdir() if p.name.startswith("S1")}
    assert on_disk == (set(REAL) - {n for n in REAL if "POEORB" in n}) | {REP_SUP, OBMEMC}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_names(name):
    product_type, unit, start, stop, generation, version = REAL[name]
    parsed = parse(name)
    assert parsed == ProductName(
        name=name,
        logical_name=name,
        container="",
        format="SAFE" if name.endswith(".SAFE") else "EOF",
        mission="S1",
        unit=unit,
        product_type=product_type,
        validity_start=start,
        validity_stop=stop,
        generation=generation,
        version=version,
    )
    assert parsed.platform_serial == unit


def test_rep_sup_needs_configuration():
    with pytest.raises(NameRejected) as err:
        parse(REP_SUP)
    assert err.value.reason == TYPE_UNKNOWN
    parsed = parse(REP_SUP, WITH_REP_SUP)
    assert (parsed.product_type, parsed.unit, parsed.format, parsed.version) == ("REP__SUP__", "A", "EOF", 1)
    assert (parsed.validity_start, parsed.validity_stop) == (utc(2018, 12, 8, 7), utc(2018, 12, 8, 11, 15))
    assert parsed.generation is None


def test_obmemc_is_a_known_layout_with_unknown_type():
    with pytest.raises(NameRejected) as err:
        parse(OBMEMC)
    assert (err.value.reason, "AUX_OBMEMC" in err.value.detail) == (TYPE_UNKNOWN, True)


SAFE_BASE = "S1A_AUX_PP1_V20150519T120000_G20171003T120730"
ORBIT_BASE = "S1A_OPER_AUX_POEORB_OPOD_20240502T070757_V20240411T225942_20240413T005942"
ERRMAT_BASE = "S1A_OPER_AMH_ERRMAT_MPC__20210506T040009_V20000101T000000_20210505T113357"
MPL_BASE = "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001"
TIMELINE_BASE = "S1A_OPER_MPL_TIMELINE_20241119T171645_20241201T193544"


@pytest.mark.parametrize(
    "name, logical, container, fmt",
    [
        (f"{SAFE_BASE}.SAFE", f"{SAFE_BASE}.SAFE", "", "SAFE"),
        (f"{SAFE_BASE}.SAFE.zip", f"{SAFE_BASE}.SAFE", "zip", "SAFE"),
        (f"{SAFE_BASE}.zip", f"{SAFE_BASE}.SAFE", "zip", "SAFE"),
        (f"{SAFE_BASE}.tgz", f"{SAFE_BASE}.SAFE", "tgz", "SAFE"),
        (f"{SAFE_BASE}.SAFE.tgz", f"{SAFE_BASE}.SAFE", "tgz", "SAFE"),
        (f"{ORBIT_BASE}.EOF", f"{ORBIT_BASE}.EOF", "", "EOF"),
        (f"{ORBIT_BASE}.EOF.zip", f"{ORBIT_BASE}.EOF", "zip", "EOF"),
        (f"{ORBIT_BASE}.zip", f"{ORBIT_BASE}.EOF", "zip", "EOF"),
        (f"{ERRMAT_BASE}.EOF", f"{ERRMAT_BASE}.EOF", "", "EOF"),
        (f"{ERRMAT_BASE}.EOF.zip", f"{ERRMAT_BASE}.EOF", "zip", "EOF"),
        (f"{MPL_BASE}.EOF", f"{MPL_BASE}.EOF", "", "EOF"),
        # A mission-planning tgz is the product itself.
        (f"{MPL_BASE}.tgz", f"{MPL_BASE}.tgz", "", "TGZ"),
        (f"{TIMELINE_BASE}.tgz", f"{TIMELINE_BASE}.tgz", "", "TGZ"),
    ],
)
def test_containers(name, logical, container, fmt):
    parsed = parse(name)
    got = (parsed.name, parsed.logical_name, parsed.container, parsed.format)
    assert got == (name, logical, container, fmt)


def test_families():
    errmat = parse(f"{ERRMAT_BASE}.EOF.zip")
    assert (errmat.product_type, errmat.version) == ("AMH_ERRMAT", None)
    assert errmat.generation == utc(2021, 5, 6, 4, 0, 9)
    assert parse(ERRMAT_BASE.replace("AMH", "AMV") + ".EOF").product_type == "AMV_ERRMAT"
    timeline = parse(f"{TIMELINE_BASE}.tgz")
    assert (timeline.product_type, timeline.version, timeline.generation) == ("MPL_TIMELINE", None, None)
    assert timeline.validity_stop == utc(2024, 12, 1, 19, 35, 44)
    for unit in "ABCD":
        assert parse(f"S1{unit}{ORBIT_BASE[3:]}.EOF").unit == unit
    for kind in ("PREORB", "RESATT"):
        assert parse(ORBIT_BASE.replace("POEORB", kind) + ".EOF").product_type == f"AUX_{kind}"
    for kind in ("SCS", "SCF", "ITC", "ML2"):
        assert parse(f"S1B_AUX_{kind}_V20150519T120000_G20171003T120730.SAFE").product_type == f"AUX_{kind}"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "foo.SAFE",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200",  # no suffix
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.EOF",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.tar",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.safe",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE\n",
        " S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE",
        "s1a_aux_cal_v20171017t080000_g20171013t101200.safe",
        "S1E_AUX_CAL_V20171017T080000_G20171013T101200.SAFE",
        "S2A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE",
        "S1A_AUX_CAL_V20171317T080000_G20171013T101200.SAFE",  # month 13
        "S1A_AUX_CAL_V20171017T250000_G20171013T101200.SAFE",  # hour 25
        "S1A_AUX_CAL_V20170229T080000_G20171013T101200.SAFE",  # not a leap year
        "S1A_AUX_CAL_V99999999T999999_G20171013T101200.SAFE",  # open start
        "S1A_AUX_CAL_V20171017T080000_G99999999T999999.SAFE",  # open generation
        "S1__AUX_TEC_V20190805T235959_20190805T000000_G20200210T102615.SAFE",  # start after stop
        "data/S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE",
        "..\\S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE/manifest.safe",
        "S1A_AUX_CAL_V２0171017T080000_G20171013T101200.SAFE",  # non-ASCII digit
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200é.SAFE",
        f"{ORBIT_BASE}.tgz",  # orbit files are not shipped as tgz
        f"{ORBIT_BASE}.SAFE",
        ORBIT_BASE.replace("_V2024", "_2024") + ".EOF",
        ORBIT_BASE.replace("OPOD", "OPODX") + ".EOF",
        ORBIT_BASE.replace("S1A", "S1_") + ".EOF",  # orbits always have a unit
        MPL_BASE.replace("S1A", "S1_") + ".EOF",
        f"{MPL_BASE}.EOF.zip",
        MPL_BASE.replace("_0001", "_001") + ".EOF",
        MPL_BASE.replace("_0001", "_00001") + ".EOF",
        "S1A_OPER_MPL_ORBPRE_20171215T200309_20171208T200309_0001.EOF",  # start after stop
        "S1A_TEST_AUX_POEORB_OPOD_20240502T070757_V20240411T225942_20240413T005942.EOF",
        "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE" + "x" * 300,
    ],
)
def test_name_invalid(name):
    with pytest.raises(NameRejected) as err:
        parse(name)
    assert err.value.reason == NAME_INVALID
    assert err.value.detail
    assert str(err.value).startswith("name_invalid: ")


@pytest.mark.parametrize(
    "name",
    [
        REP_SUP,
        OBMEMC,
        "S1A_AUX_XYZ_V20171017T080000_G20171013T101200.SAFE",
        "S1A_AUX_XYZ_whatever",
        "S1__OPER_MSK__LAND__V20140403T000000_21000101T000000_0001.EOF",
        "S1A_OPER_AUX_CAL____OPOD_20240502T070757_V20240411T225942_20240413T005942.EOF",
    ],
)
def test_type_unknown(name):
    with pytest.raises(NameRejected) as err:
        parse(name)
    assert err.value.reason == TYPE_UNKNOWN


def test_too_long_and_non_ascii_are_refused_before_anything_else():
    for name in ("S1A_OPER_AUX_OBMEMC_" + "X" * 300, "S1A_OPER_AUX_OBMEMC_PDMC_é.xml"):
        with pytest.raises(NameRejected) as err:
            parse(name)
        assert err.value.reason == NAME_INVALID


def test_product_name_is_frozen():
    parsed = parse(f"{SAFE_BASE}.SAFE")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.unit = "B"  # type: ignore[misc]


def test_type_table():
    assert DEFAULT_TYPES == load_type_table(os.environ.get(naming.ENV_EXTRA_TYPES))
    table = load_type_table(" REP__SUP__ = mpl ,, AUX_XYZ=safe, AUX_NEWORB=orbit,AUX_CAL=safe ")
    assert (table["REP__SUP__"], table["AUX_XYZ"], table["AUX_NEWORB"]) == (MPL, SAFE, ORBIT)
    assert parse("S1A_AUX_XYZ_V20171017T080000_G20171013T101200.SAFE", table).product_type == "AUX_XYZ"
    assert parse(ORBIT_BASE.replace("POEORB", "NEWORB") + ".EOF", table).product_type == "AUX_NEWORB"
    assert load_type_table(None) == BUILTIN_TYPES == load_type_table("")
    with pytest.raises(TypeError):
        BUILTIN_TYPES["X"] = SAFE  # type: ignore[index]


@pytest.mark.parametrize(
    "extra",
    [
        "REP__SUP__", "REP__SUP__=eof", "=mpl", "REP_SUP=mpl", "AUX_TOOLONG=safe",
        "AUX_CAL=orbit", "aux_xyz=safe",
    ],
)
def test_type_table_refuses_bad_configuration(extra):
    with pytest.raises(ValueError, match=naming.ENV_EXTRA_TYPES):
        load_type_table(extra)


def test_parsing_is_fast():
    names = [*REAL, f"{SAFE_BASE}.SAFE.zip", OBMEMC, "garbage"] * 500
    began = time.perf_counter()
    for name in names:
        try:
            parse(name)
        except NameRejected:
            pass
    # About 15 us a name on a laptop; the bound only catches pathological regexes.
    assert time.perf_counter() - began < 2.0


# --- property-based ----------------------------------------------------------

TABLE = load_type_table("REP__SUP__=mpl,AUX_XYZ=safe,ABC_DEFGHIJK=mpl")
SUFFIXES = {
    SAFE: [
        (".SAFE", "", "SAFE"), (".SAFE.zip", "zip", "SAFE"), (".zip", "zip", "SAFE"),
        (".tgz", "tgz", "SAFE"),
    ],
    ORBIT: [(".EOF", "", "EOF"), (".EOF.zip", "zip", "EOF"), (".zip", "zip", "EOF")],
    MPL: [(".EOF", "", "EOF"), (".tgz", "", "TGZ")],
}
times = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9998, 12, 31)).map(
    lambda dt: dt.replace(microsecond=0, tzinfo=UTC)
)


def compact(dt: datetime) -> str:
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}T{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"


def build(c: dict) -> str:
    """File name from components; time fields are strings so tests can corrupt them."""
    if c["layout"] == SAFE:
        stop = "" if c["stop"] is None else f"_{c['stop']}"
        base = f"S1{c['unit']}_{c['type']}_V{c['start']}{stop}_G{c['gen']}"
    elif c["layout"] == ORBIT:
        base = f"S1{c['unit']}_OPER_{c['type']}_{c['site']}_{c['gen']}_V{c['start']}_{c['stop']}"
    else:
        version = "" if c["version"] is None else f"_{c['version']:04d}"
        base = f"S1{c['unit']}_OPER_{c['type']}_{c['start']}_{c['stop']}{version}"
    return base + c["suffix"][0]


@st.composite
def components(draw) -> dict:
    product_type = draw(st.sampled_from(sorted(TABLE)))
    layout = TABLE[product_type]
    start, stop = sorted([draw(times), draw(times)])
    open_stop = layout != ORBIT and draw(st.booleans())
    return {
        "layout": layout,
        "type": product_type,
        "unit": draw(st.sampled_from("ABCD_" if layout == SAFE else "ABCD")),
        "start": compact(start),
        "stop": (None if layout == SAFE else "99999999T999999") if open_stop else compact(stop),
        "gen": compact(draw(times)),
        "site": draw(st.sampled_from(["OPOD", "MPC_", "ABC1"])),
        "version": draw(st.none() | st.integers(0, 9999)),
        "suffix": draw(st.sampled_from(SUFFIXES[layout])),
        "_start": start,
        "_stop": OPEN_END if open_stop else stop,
    }


@given(components())
def test_valid_components_parse_and_round_trip(c):
    name = build(c)
    parsed = parse(name, TABLE)
    suffix, container, fmt = c["suffix"]
    assert parsed.name == name
    assert (parsed.container, parsed.format, parsed.mission) == (container, fmt, "S1")
    assert parsed.unit == ("" if c["unit"] == "_" else c["unit"])
    assert parsed.product_type == c["type"]
    assert (parsed.validity_start, parsed.validity_stop) == (c["_start"], c["_stop"])
    if c["layout"] == MPL:
        assert parsed.generation is None
        assert parsed.version == c["version"]
    else:
        assert compact(parsed.generation) == c["gen"]
        assert parsed.version is None
    if fmt == "TGZ":
        assert parsed.logical_name == name
    else:
        assert parsed.logical_name == name[: -len(suffix)] + "." + fmt
    # The logical name is itself a valid, uncontained name of the same product.
    again = parse(parsed.logical_name, TABLE)
    assert dataclasses.replace(again, name=name, container=container) == parsed


@given(st.text(max_size=300))
def test_arbitrary_text_is_only_ever_rejected(text):
    try:
        parse(text, TABLE)
    except NameRejected as err:
        assert err.reason in (NAME_INVALID, TYPE_UNKNOWN)


@given(components(), st.text(alphabet="S1ABCD_OPERAUXTV0123456789.SAFEzipgtz", max_size=30), st.integers(0, 80))
def test_near_miss_text_is_only_ever_rejected(c, noise, at):
    name = build(c)
    mangled = name[:at] + noise + name[at + len(noise) // 2:]
    try:
        parse(mangled, TABLE)
    except NameRejected as err:
        assert err.reason in (NAME_INVALID, TYPE_UNKNOWN)


def rejected(c: dict) -> str:
    with pytest.raises(NameRejected) as err:
        parse(build(c), TABLE)
    return err.value.reason


@given(components(), st.sampled_from(["00", "13", "19", "99"]), st.sampled_from(["start", "stop", "gen"]))
def test_bad_month_is_name_invalid(c, month, field):
    assume(c[field] not in (None, "99999999T999999"))
    assume(not (field == "gen" and c["layout"] == MPL))  # MPL names carry no generation
    c[field] = c[field][:4] + month + c[field][6:]
    assert rejected(c) == NAME_INVALID


@given(components())
def test_swapped_validity_is_name_invalid(c):
    assume(c["stop"] is not None and c["_start"] < c["_stop"])
    c["start"], c["stop"] = c["stop"], c["start"]
    assert rejected(c) == NAME_INVALID


@given(components(), st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=10, max_size=10))
def test_unknown_type_is_type_unknown(c, other):
    if c["layout"] == SAFE:
        other = "AUX_" + other.replace("_", "Q")[:3]
    assume(other not in TABLE)
    c["type"] = other
    assert rejected(c) == TYPE_UNKNOWN
