import dataclasses
import hashlib
import io
from datetime import datetime
from pathlib import Path

import pytest

from shared.core.attacks import Attack
from shared.core.metadata import (
    CONTENT_MISMATCH,
    METADATA_INVALID,
    DataObject,
    MetadataError,
    ProductMetadata,
    from_eof,
    from_manifest,
    from_name,
)
from shared.core.naming import load_type_table, parse
from shared.core.s1time import OPEN_END, UTC

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "real"
TYPES = load_type_table("REP__SUP__=mpl")
POEORB_NAME = "S1A_OPER_AUX_POEORB_OPOD_20181203T120749_V20181112T225942_20181114T005942.EOF"
RESORB = "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF"
CAL = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
OBMEMC = SAMPLES / "S1A_OPER_AUX_OBMEMC_PDMC_20140201T000000.xml"
TEC = "S1__AUX_TEC_V20190805T000000_20190805T235959_G20200210T102615.SAFE"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def manifest(folder: str) -> ProductMetadata:
    return from_manifest((SAMPLES / folder / "manifest.safe").read_bytes(), parse(folder))


def eof(file: str, name: str | None = None) -> ProductMetadata:
    with open(SAMPLES / file, "rb") as stream:
        return from_eof(stream, parse(name or Path(file).name, TYPES))


def base(product_type: str, unit: str, start: datetime, stop: datetime) -> dict:
    return {
        "productType": product_type,
        "platformShortName": "SENTINEL-1",
        "platformSerialIdentifier": unit,
        "beginningDateTime": start,
        "endingDateTime": stop,
    }


MPC = "CLS-Brest"
S1A_IPF_PARAMS = {  # (type, generation = processing time, data object) read from each manifest
    "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE": (
        "AUX_CAL",
        utc(2017, 10, 13, 10, 12),
        DataObject("data/s1a-aux-cal.xml", 1556988, "b0a9afe84f8326ee2e060a19d7335e90"),
    ),
    "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE": (
        "AUX_INS",
        utc(2017, 10, 13, 10, 12, 16),
        DataObject("data/s1a-aux-ins.xml", 772232, "3bf5ad133d04dca0bf5c3f7681810434"),
    ),
    "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE": (
        "AUX_PP1",
        utc(2017, 10, 13, 10, 12, 36),
        DataObject("data/s1a-aux-pp1.xml", 383606, "c81ffaa0e85b88773fff5cd8a23732a8"),
    ),
    "S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE": (
        "AUX_PP2",
        utc(2017, 10, 13, 10, 12, 54),
        DataObject("data/s1a-aux-pp2.xml", 7496, "b06b2e1cc49d6861b4825574124891f8"),
    ),
}


@pytest.mark.parametrize("folder", sorted(S1A_IPF_PARAMS))
def test_s1a_ipf_manifests(folder):
    product_type, generation, data = S1A_IPF_PARAMS[folder]
    start = utc(2017, 10, 17, 8)
    assert manifest(folder) == ProductMetadata(
        validity_start=start,
        validity_stop=OPEN_END,  # the manifest has a start only, the name no stop
        generation=generation,
        attributes={
            **base(product_type, "A", start, OPEN_END),
            "processingDate": generation,
            "processingCenter": MPC,
            "generationDate": generation,
            "instrumentConfigurationId": 6,
        },
        data_objects=(data,),
        references=(f"support/s1-aux-{product_type[-3:].lower()}.xsd",
                    "support/s1-object-types.xsd"),
    )


@pytest.mark.parametrize("folder", sorted(S1A_IPF_PARAMS)[:3])  # PP2 data was never published
def test_manifest_checksums_match_the_real_data(folder):
    for obj in manifest(folder).data_objects:
        content = (SAMPLES / folder / obj.href).read_bytes()
        assert (len(content), hashlib.md5(content).hexdigest()) == (obj.size, obj.md5)


def test_aux_ice():
    start, generation = utc(2016, 5, 1, 12), datetime(2016, 5, 2, 4, 36, 7, 59812, tzinfo=UTC)
    assert manifest("S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE") == ProductMetadata(
        validity_start=start,
        validity_stop=OPEN_END,
        generation=generation,  # microseconds from the manifest, the name has seconds only
        attributes={
            **base("AUX_ICE", "", start, OPEN_END),
            "processingDate": generation,
            "processingCenter": "PDMC",
            "generationDate": generation,
            "instrumentConfigurationId": 1,
        },
        data_objects=(
            DataObject(
                "data/ice_edge_nh_polstere-100_multi_201605011200.nc",
                9383900,
                "df9bea0d298bd85940debdf4ab1c7a7a",
            ),
            DataObject(
                "data/ice_edge_sh_polstere-100_multi_201605011200.nc",
                7231320,
                "385749bf6806efc4cd4ae7b2f95e240e",
            ),
        ),
        references=("support/s1-aux-ice.xsd",),
    )


def test_aux_wnd():
    start, generation = utc(2016, 4, 23, 12), datetime(2016, 4, 22, 6, 0, 59, 747123, tzinfo=UTC)
    assert manifest("S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE") == ProductMetadata(
        validity_start=start,
        validity_stop=OPEN_END,
        generation=generation,
        attributes={
            **base("AUX_WND", "", start, OPEN_END),
            "processingDate": generation,
            "processingCenter": "PDMC",
            "generationDate": generation,
            "instrumentConfigurationId": 1,
        },
        data_objects=(DataObject("data/D1D04220000042312001", 12450408, "87402a1d5f7c183d8978a58d34c09cec"),),
        references=("support/s1-aux-wnd.xsd",),
    )


def test_aux_wav_old_safe_namespace():
    start, generation = utc(2011, 8, 1), utc(2011, 10, 26, 14, 18, 50)
    assert manifest("S1__AUX_WAV_V20110801T000000_G20111026T141850.SAFE") == ProductMetadata(
        validity_start=start,
        validity_stop=OPEN_END,
        generation=generation,
        attributes={
            **base("AUX_WAV", "", start, OPEN_END),
            # Real quirk: processing is dated six weeks after the generation time.
            "processingDate": utc(2011, 12, 5, 12),
            "processingCenter": "Frascati",
            "generationDate": generation,
            "instrumentConfigurationId": 1,
        },
        data_objects=(
            DataObject(
                "data/ifremer-ww3-glob-30min-20110801t00z-uss.nc",
                1377300,
                "22e35792b758a390b0e9854e8c81acf7",
            ),
        ),
        references=("support/s1-aux-wav.xsd", "support/s1-object-types.xsd"),
    )


def test_aux_tec_without_validity_or_declaration():
    start, stop, generation = utc(2019, 8, 5), utc(2019, 8, 5, 23, 59, 59), utc(2020, 2, 10, 10, 26, 15)
    assert manifest(TEC) == ProductMetadata(
        validity_start=start,  # from the name: the manifest has none
        validity_stop=stop,
        generation=generation,
        attributes={
            **base("AUX_TEC", "", start, stop),
            "processingDate": generation,
            "processingCenter": "Remote Sensing Technology Institute - MF-SAR",
            "processorName": "Get_TEC_SAFE",
            "processorVersion": "001.00",
            "generationDate": generation,
        },
        data_objects=(DataObject("data/codg2170.19i.Z", 278967, "e5dc31c50fe7e777dcc0d23d992b6a07"),),
    )


def test_aux_tro_malformed_processing_time():
    start, stop, generation = utc(2019, 8, 5, 18), utc(2019, 8, 5, 23, 59, 59), utc(2020, 5, 18, 8, 45, 34)
    meta = manifest("S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE")
    assert (meta.validity_start, meta.validity_stop, meta.generation) == (start, stop, generation)
    assert meta.attributes == {
        **base("AUX_TRO", "", start, stop),
        "processingDate": generation,  # written 2020-05-18-T08:45:34.000000
        "processingCenter": "Remote Sensing Technology Institute - MF-SAR",
        "processorName": "Get_TRO_SAFE",
        "processorVersion": "001.00",
        "generationDate": generation,
    }
    sizes = {"129": 12968500, "130": 1776684500, "133": 1776684500, "134": 12967308, "151": 12967308}
    assert [(o.href, o.size) for o in meta.data_objects] == [
        (f"data/ECMWF_OPER_ML00_06H_{p}_GP_N640_20190805T180000", size) for p, size in sizes.items()
    ]
    assert meta.data_objects[0].md5 == "ccf8897ed28245fb1511b932b95fe763"
    assert meta.data_objects[-1].md5 == "bbfc77a0fe76e262bdbf658e4a557e56"


def eof_expected(name, start, stop, created, center, creator, version, file_version, description):
    unit = name[2] if name[2] != "_" else ""
    return ProductMetadata(
        validity_start=start,
        validity_stop=stop,
        generation=created,
        attributes={
            **base(parse(name, TYPES).product_type, unit, start, stop),
            "processingDate": created,
            "processingCenter": center,
            "processorName": creator,
            "processorVersion": version,
            "fileClass": "OPER",
            "fileVersion": file_version,
            "fileDescription": description,
        },
    )


ORBSCT = "EO_ORBIT:xo_gen_osf_append_orbit_change"
EOFS = {
    RESORB: (utc(2017, 12, 13, 10, 27, 37), utc(2017, 12, 13, 13, 45, 7), utc(2017, 12, 13, 14, 38, 38),
             "OPOD", "OPOD", "1.4.0", "0001", "NRT POD Restituted Orbit File"),
    "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF":
        (utc(2017, 12, 8, 20, 3, 9), utc(2017, 12, 15, 20, 3, 9), utc(2017, 12, 8, 20, 2, 13),
         "FOS", "NAPEOS", "3.0", "0001", "FOS Predicted Orbit File"),
    # ORBSCT: the header starts at the first ANX (2014-04-03), not at the name's 2014-05-07.
    "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0020.EOF":
        (utc(2014, 4, 3, 22, 46, 9), OPEN_END, utc(2017, 1, 23, 16, 38, 9),
         "PDMC", ORBSCT, "4.11", "0020", "Reference Orbit Scenario File"),
    "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0024.EOF":
        (utc(2014, 4, 3, 22, 46, 9), OPEN_END, utc(2022, 2, 11, 13, 48, 3),
         "PDMC", ORBSCT, "4.13", "0024", "Reference Orbit Scenario File"),
    "S1B_OPER_MPL_ORBSCT_20160425T224606_99999999T999999_0017.EOF":
        (utc(2016, 4, 25, 22, 46, 6), OPEN_END, utc(2022, 2, 10, 10, 55, 6),
         "PDMC", ORBSCT, "4.13", "0017", "Reference Orbit Scenario File"),
    "S1A_OPER_REP__SUP___20181208T070000_20181208T111500_0001.EOF":
        (utc(2018, 12, 8, 7), utc(2018, 12, 8, 11, 15), utc(2018, 12, 7),
         "FOS", "MCS", "1.0", "0001", "FOS and Spacecraft Unavailability Report"),
}


@pytest.mark.parametrize("file", sorted(EOFS))
def test_eof_headers(file):
    assert eof(file) == eof_expected(file, *EOFS[file])


def test_trimmed_poeorb_with_the_name_from_its_header():
    assert eof("trimmed_from_real/S1_orbit_example.EOF", POEORB_NAME) == eof_expected(
        POEORB_NAME, utc(2018, 11, 12, 22, 59, 42), utc(2018, 11, 14, 0, 59, 42), utc(2018, 12, 3, 12, 7, 49),
        "OPOD", "OPOD", "1.5.3", "0001", "Precise Orbit Ephemerides (POE) Orbit File",
    )


class CountingReader(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._inner.read(size)
        self.consumed += len(chunk)
        return chunk


def test_eof_reading_stops_after_the_header():
    data = (SAMPLES / RESORB).read_bytes()
    # A big data block behind the header must not be read, even partly parsed.
    big = data + b"<!-- padding -->" * 200_000
    reader = CountingReader(big)
    assert from_eof(reader, parse(RESORB)).validity_stop == utc(2017, 12, 13, 13, 45, 7)
    # Read in small steps: no more than one step past the header's end.
    end = data.index(b"</Earth_Explorer_Header>") + len(b"</Earth_Explorer_Header>")
    assert reader.consumed <= end + 2048 < len(big)


def test_eof_truncated_after_the_header_is_accepted():
    # Only the header is read: damage in the data block is for the consumer to find.
    data = (SAMPLES / RESORB).read_bytes()
    end = data.index(b"</Earth_Explorer_Header>") + len(b"</Earth_Explorer_Header>")
    assert from_eof(io.BytesIO(data[: end + 200]), parse(RESORB)).generation == utc(2017, 12, 13, 14, 38, 38)


@pytest.mark.parametrize("cut", [0, 1, 30, 200, 600, 900])
def test_eof_truncated_in_the_header_is_refused(cut):
    data = (SAMPLES / RESORB).read_bytes()
    assert cut < data.index(b"</Earth_Explorer_Header>")
    with pytest.raises(MetadataError) as err:
        from_eof(io.BytesIO(data[:cut]), parse(RESORB))
    assert err.value.reason == METADATA_INVALID


def expect_invalid(call, *args, match: str = "") -> MetadataError:
    with pytest.raises(MetadataError, match=match) as err:
        call(*args)
    assert err.value.reason == METADATA_INVALID and err.value.detail
    return err.value


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://example.invalid/evil.dtd">
"""


@pytest.mark.parametrize("prolog", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_hostile_manifest_is_refused(prolog):
    body = b"<XFDU><metadataSection><x>&lol9;&xxe;</x></metadataSection></XFDU>"
    error = expect_invalid(from_manifest, prolog + body, parse(CAL), match="refused")
    assert "Forbidden" in error.detail
    assert error.attack is Attack.XXE


@pytest.mark.parametrize("prolog", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_hostile_eof_is_refused(prolog):
    real = (SAMPLES / RESORB).read_bytes()
    hostile = prolog + real[real.index(b"<Earth_Explorer_File>"):].replace(
        b"<Notes></Notes>", b"<Notes>&lol9;&xxe;</Notes>"
    )
    error = expect_invalid(from_eof, io.BytesIO(hostile), parse(RESORB), match="refused")
    assert "Forbidden" in error.detail
    assert error.attack is Attack.XXE


def cal_manifest(old: bytes, new: bytes) -> bytes:
    real = (SAMPLES / CAL / "manifest.safe").read_bytes()
    assert old in real
    return real.replace(old, new)


@pytest.mark.parametrize(
    "xml, match",
    [
        (b"", "well-formed"),
        (b"<XFDU><metadataSection>", "well-formed"),
        (b"<Earth_Explorer_File/>", "XFDU"),
        (cal_manifest(b"2017-10-17T08:00:00.000000", b"2017-10-17"), "validity"),
        (cal_manifest(b"2017-10-17T08:00:00.000000", b"TAI=2017-10-17T08:00:37"), "validity"),
        (cal_manifest(b">6<", b">six<"), "instrumentConfigurationId"),
        (cal_manifest(b'size="1556988"', b'size="big"'), "size"),
        (cal_manifest(b'size="1556988"', b'size="-1"'), "size"),
        (cal_manifest(b"b0a9afe84f8326ee2e060a19d7335e90", b""), "MD5"),
        (cal_manifest(b'checksumName="MD5"', b'checksumName="SHA1"'), "MD5"),
        (cal_manifest(b"./data/s1a-aux-cal.xml", b"../../etc/passwd"), "href"),
        (cal_manifest(b"./data/s1a-aux-cal.xml", b"/etc/passwd"), "href"),
        (cal_manifest(b"./data/s1a-aux-cal.xml", b"data/../../x"), "href"),
        (cal_manifest(b"./data/s1a-aux-cal.xml", b"s3://bucket/x"), "href"),
        (cal_manifest(b' href="./data/s1a-aux-cal.xml"', b""), "href"),
    ],
)
def test_bad_manifests_are_refused(xml, match):
    expect_invalid(from_manifest, xml, parse(CAL), match=match)


def test_manifest_validity_after_the_name_stop_falls_back_to_the_name():
    real = (SAMPLES / TEC / "manifest.safe").read_bytes()
    xml = real.replace(b"<origin>CODE</origin>", b"<validity>2019-08-06T00:00:00</validity>")
    meta = from_manifest(xml, parse(TEC))
    assert (meta.validity_start, meta.validity_stop) == (utc(2019, 8, 5), utc(2019, 8, 5, 23, 59, 59))


def test_manifest_validity_disagreeing_with_the_name_wins():
    meta = from_manifest(cal_manifest(b"2017-10-17T08:00:00.000000", b"2017-10-01T00:00:00"), parse(CAL))
    assert meta.validity_start == meta.attributes["beginningDateTime"] == utc(2017, 10, 1)


def resorb_with(old: bytes, new: bytes, count: int = 1) -> io.BytesIO:
    real = (SAMPLES / RESORB).read_bytes()
    assert old in real
    return io.BytesIO(real.replace(old, new, count))


def test_eof_start_after_stop_falls_back_to_the_name():
    stream = resorb_with(b"UTC=2017-12-13T10:27:37</", b"UTC=2017-12-14T00:00:00</")
    meta = from_eof(stream, parse(RESORB))
    expected = (utc(2017, 12, 13, 10, 27, 37), utc(2017, 12, 13, 13, 45, 7))
    assert (meta.validity_start, meta.validity_stop) == expected
    assert meta.attributes["beginningDateTime"] == meta.validity_start


@pytest.mark.parametrize(
    "stream, match",
    [
        (resorb_with(b"UTC=2017-12-13T10:27:37", b"TAI=2017-12-13T10:28:14"), "Validity_Start"),
        (resorb_with(b"UTC=2017-12-13T14:38:38", b"yesterday"), "Creation_Date"),
        (resorb_with(b"<Earth_Explorer_Header>", b"<Other_Header>"), "well-formed"),
        (resorb_with(b"Earth_Explorer_Header>", b"Other_Header>", 2), "Fixed_Header"),
        (io.BytesIO(OBMEMC.read_bytes()), "Earth_Explorer_File"),
    ],
)
def test_bad_eof_headers_are_refused(stream, match):
    expect_invalid(from_eof, stream, parse(RESORB), match=match)


def test_metadata_is_frozen():
    meta = manifest(CAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.generation = None  # type: ignore[misc]


def test_a_file_of_another_type_than_its_name_is_a_content_mismatch():
    xml = cal_manifest(b"<ns1:auxProductType>AUX_CAL<", b"<ns1:auxProductType>AUX_PP1<")
    with pytest.raises(MetadataError, match="AUX_PP1") as err:
        from_manifest(xml, parse(CAL))
    assert err.value.reason == CONTENT_MISMATCH
    stream = resorb_with(b"<File_Type>AUX_RESORB", b"<File_Type>AUX_POEORB")
    with pytest.raises(MetadataError, match="AUX_POEORB") as err:
        from_eof(stream, parse(RESORB))
    assert err.value.reason == CONTENT_MISMATCH


def test_from_name_for_products_without_readable_metadata():
    name = parse("S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.tgz")
    start, stop = utc(2017, 12, 8, 20, 3, 9), utc(2017, 12, 15, 20, 3, 9)
    assert from_name(name) == ProductMetadata(
        validity_start=start,
        validity_stop=stop,
        generation=None,
        attributes={**base("MPL_ORBPRE", "A", start, stop), "fileVersion": "0001"},
    )
    timeline = from_name(parse("S1A_OPER_MPL_TIMELINE_20241119T171645_20241201T193544.tgz"))
    assert "fileVersion" not in timeline.attributes
    assert timeline.validity_stop == utc(2024, 12, 1, 19, 35, 44)
    # Same attributes as the EOF header gives, where the name carries them.
    header = eof("S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF").attributes
    assert from_name(name).attributes.items() <= header.items()


def test_manifest_references_are_part_of_the_product() -> None:
    name = "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"
    xml = (SAMPLES / name / "manifest.safe").read_bytes()
    meta = from_manifest(xml, parse(name))
    assert meta.references == ("support/s1-aux-cal.xsd", "support/s1-object-types.xsd")
    on_disk = {str(p.relative_to(SAMPLES / name)) for p in (SAMPLES / name).rglob("*")
               if p.is_file()}
    assert {o.href for o in meta.data_objects} | set(meta.references) | {"manifest.safe"} == on_disk
