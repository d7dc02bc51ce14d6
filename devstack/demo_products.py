"""Realistic Sentinel-1 auxiliary products, generated: orbit EOF files with a proper Earth
Explorer header and state vectors, SAFE folders with manifest and data (MD5s that match),
zipped SAFE. Used by `auxip demo` (a fresh clone has no real samples), by the tests that
need many or hostile files, and by the benchmarks."""

from __future__ import annotations

import hashlib
import io
import math
import random
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_T = "%Y%m%dT%H%M%S"
_ISO = "%Y-%m-%dT%H:%M:%S"
_SAFE_DESCRIPTIONS = {
    "AUX_CAL": ("cal", "L1 Auxiliary Calibration Parameters"),
    "AUX_INS": ("ins", "Auxiliary Instrument Parameters"),
    "AUX_PP1": ("pp1", "L1 Auxiliary Processor Parameters"),
    "AUX_PP2": ("pp2", "L2 Auxiliary Processor Parameters"),
    "AUX_SCS": ("scs", "Auxiliary Simulated Cross Spectra"),
}


@dataclass(frozen=True)
class DemoFile:
    key: str  # inbox key (a SAFE folder gives one DemoFile per object)
    body: bytes


def orbit_eof(unit: str, product_type: str, start: datetime, stop: datetime,
              created: datetime, *, step_s: int = 10, max_vectors: int | None = None,
              file_type: str | None = None) -> tuple[str, bytes]:
    """An orbit file (AUX_RESORB/POEORB/PREORB): name and bytes. `file_type` lets a test
    write a header that contradicts the name."""
    stem = (f"S1{unit}_OPER_{product_type}_OPOD_{created:{_T}}"
            f"_V{start:{_T}}_{stop:{_T}}")
    vectors = []
    count = int((stop - start).total_seconds() // step_s) + 1
    if max_vectors is not None:
        count = min(count, max_vectors)
    for i in range(count):
        t = start + timedelta(seconds=i * step_s)
        angle = 2 * math.pi * (i * step_s) / 5924.0  # ~98.7 min orbit
        r = 7_070_000.0
        vectors.append(
            "    <OSV>\n"
            f"      <TAI>TAI={(t + timedelta(seconds=37)).strftime(_ISO)}.000000</TAI>\n"
            f"      <UTC>UTC={t.strftime(_ISO)}.000000</UTC>\n"
            f"      <UT1>UT1={t.strftime(_ISO)}.231823</UT1>\n"
            f"      <Absolute_Orbit>+{19682 + (i * step_s) // 5924}</Absolute_Orbit>\n"
            f"      <X unit=\"m\">{r * math.cos(angle):.6f}</X>\n"
            f"      <Y unit=\"m\">{r * math.sin(angle) * 0.2:.6f}</Y>\n"
            f"      <Z unit=\"m\">{r * math.sin(angle):.6f}</Z>\n"
            f"      <VX unit=\"m/s\">{-7450 * math.sin(angle):.6f}</VX>\n"
            f"      <VY unit=\"m/s\">{1500 * math.cos(angle) * 0.2:.6f}</VY>\n"
            f"      <VZ unit=\"m/s\">{7450 * math.cos(angle):.6f}</VZ>\n"
            "      <Quality>NOMINAL</Quality>\n"
            "    </OSV>\n")
    description = {"AUX_RESORB": "NRT POD Restituted Orbit File",
                   "AUX_POEORB": "Precise Orbit Ephemerides (POE) Orbit File",
                   "AUX_PREORB": "Predicted Orbit File"}.get(product_type, "Orbit File")
    body = (
        '<?xml version="1.0" ?>\n<Earth_Explorer_File>\n  <Earth_Explorer_Header>\n'
        "    <Fixed_Header>\n"
        f"      <File_Name>{stem}</File_Name>\n"
        f"      <File_Description>{description}</File_Description>\n"
        "      <Notes></Notes>\n"
        f"      <Mission>Sentinel-1{unit}</Mission>\n"
        "      <File_Class>OPER</File_Class>\n"
        f"      <File_Type>{file_type or product_type}</File_Type>\n"
        "      <Validity_Period>\n"
        f"        <Validity_Start>UTC={start.strftime(_ISO)}</Validity_Start>\n"
        f"        <Validity_Stop>UTC={stop.strftime(_ISO)}</Validity_Stop>\n"
        "      </Validity_Period>\n"
        "      <File_Version>0001</File_Version>\n"
        "      <Source>\n        <System>OPOD</System>\n        <Creator>OPOD</Creator>\n"
        "        <Creator_Version>1.5.3</Creator_Version>\n"
        f"        <Creation_Date>UTC={created.strftime(_ISO)}</Creation_Date>\n"
        "      </Source>\n    </Fixed_Header>\n    <Variable_Header>\n"
        "      <Ref_Frame>EARTH_FIXED</Ref_Frame>\n      <Time_Reference>UTC</Time_Reference>\n"
        "    </Variable_Header>\n  </Earth_Explorer_Header>\n"
        f'<Data_Block type="xml">\n  <List_of_OSVs count="{count}">\n'
        + "".join(vectors)
        + "  </List_of_OSVs>\n</Data_Block>\n</Earth_Explorer_File>\n"
    )
    return f"{stem}.EOF", body.encode()


def aux_safe(unit: str, product_type: str, validity: datetime, generation: datetime, *,
             payload_bytes: int = 20_000, seed: int = 0) -> tuple[str, dict[str, bytes]]:
    """A SAFE aux product: folder name and {relative path: bytes}, manifest MD5s correct."""
    short, description = _SAFE_DESCRIPTIONS.get(product_type, (product_type[-3:].lower(), "Auxiliary Data"))
    name = f"S1{unit}_{product_type}_V{validity:{_T}}_G{generation:{_T}}.SAFE"
    mission = "s1" + (unit.lower() if unit != "_" else "")
    data_path = f"data/{mission}-aux-{short}.xml"
    data = _aux_xml(product_type, payload_bytes, seed)
    schema = '<?xml version="1.0"?><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>\n'.encode()
    schema_path = f"support/s1-aux-{short}.xsd"
    platform_number = unit if unit != "_" else ""
    manifest = f"""<?xml version='1.0' encoding='UTF-8'?>
<ns0:XFDU version="esa/safe/sentinel-1.0/sentinel-1/auxiliary/sar/{short}" xmlns:ns0="urn:ccsds:schema:xfdu:1">
  <informationPackageMap>
    <ns0:contentUnit dmdID="platform" pdiID="processing" textInfo="SENTINEL-1{platform_number} {description}" unitType="SAFE Archive Information Package">
      <ns0:contentUnit repID="auxSchema" unitType="Measurement Data Unit">
        <dataObjectPointer dataObjectID="auxData" />
      </ns0:contentUnit>
    </ns0:contentUnit>
  </informationPackageMap>
  <metadataSection>
    <metadataObject ID="processing" category="PDI" classification="PROVENANCE">
      <metadataWrap mimeType="text/xml" textInfo="Processing" vocabularyName="SAFE">
        <xmlData>
          <ns1:processing name="{product_type} Generation" start="{generation.strftime(_ISO)}.000000" stop="{generation.strftime(_ISO)}.000000" xmlns:ns1="http://www.esa.int/safe/sentinel-1.0">
            <ns1:facility country="France" name="Copernicus S1 Core Ground Segment - MPC" site="CLS-Brest" />
          </ns1:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" category="DMD" classification="DESCRIPTION">
      <metadataWrap mimeType="text/xml" textInfo="Platform Description" vocabularyName="SAFE">
        <xmlData>
          <ns1:platform xmlns:ns1="http://www.esa.int/safe/sentinel-1.0">
            <ns1:familyName>SENTINEL-1</ns1:familyName>
            <ns1:number>{platform_number}</ns1:number>
          </ns1:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="standAloneProductInformation" category="DMD" classification="DESCRIPTION">
      <metadataWrap mimeType="text/xml" textInfo="Stand Alone Product Information" vocabularyName="SAFE">
        <xmlData>
          <ns1:standAloneProductInformation xmlns:ns1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/auxiliary/sar">
            <ns1:auxProductType>{product_type}</ns1:auxProductType>
            <ns1:validity>{validity.strftime(_ISO)}.000000</ns1:validity>
            <ns1:generation>{generation.strftime(_ISO)}.000000</ns1:generation>
            <ns1:instrumentConfigurationId>7</ns1:instrumentConfigurationId>
          </ns1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="auxSchema" category="REP" classification="SYNTAX">
      <metadataReference href="./{schema_path}" locatorType="URL" mimeType="text/xml" />
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
    <dataObject ID="auxData" repID="auxSchema">
      <byteStream mimeType="text/xml" size="{len(data)}">
        <fileLocation href="./{data_path}" locatorType="URL" />
        <checksum checksumName="MD5">{hashlib.md5(data, usedforsecurity=False).hexdigest()}</checksum>
      </byteStream>
    </dataObject>
  </dataObjectSection>
</ns0:XFDU>
"""
    return name, {"manifest.safe": manifest.encode(), data_path: data, schema_path: schema}


def zip_folder(folder: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.writestr(f"{folder}/{path}", files[path])
    return buffer.getvalue()


def folder_files(folder: str, files: dict[str, bytes]) -> list[DemoFile]:
    return [DemoFile(f"{folder}/{path}", body) for path, body in sorted(files.items())]


def demo_set(now: datetime | None = None) -> list[DemoFile]:
    """What `make run` ingests: orbit files, SAFE folders and a zipped SAFE."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    day = now.replace(hour=0, minute=0, second=0)
    files: list[DemoFile] = []
    for unit, hours_ago in (("A", 6), ("A", 3), ("C", 3)):
        start = now - timedelta(hours=hours_ago)
        name, body = orbit_eof(unit, "AUX_RESORB", start, start + timedelta(minutes=200),
                               start + timedelta(minutes=205), step_s=60)
        files.append(DemoFile(name, body))
    start = day - timedelta(days=20, seconds=3600 - 42)
    name, body = orbit_eof("A", "AUX_POEORB", start, start + timedelta(days=1, hours=2),
                           day - timedelta(days=1), step_s=120)
    files.append(DemoFile(name, body))
    cal_name, cal = aux_safe("A", "AUX_CAL", day - timedelta(days=30), day - timedelta(days=33))
    files += folder_files(cal_name, cal)
    ins_name, ins = aux_safe("C", "AUX_INS", day - timedelta(days=30), day - timedelta(days=33),
                             seed=1)
    files += folder_files(ins_name, ins)
    pp1_name, pp1 = aux_safe("A", "AUX_PP1", day - timedelta(days=30), day - timedelta(days=33),
                             seed=2)
    files.append(DemoFile(pp1_name + ".zip", zip_folder(pp1_name, pp1)))
    return files


def _aux_xml(product_type: str, size: int, seed: int) -> bytes:
    rng = random.Random(f"{product_type}:{seed}")
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<auxiliary type="{product_type}" schemaVersion="2.10">\n'
    rows = []
    total = len(head)
    i = 0
    while total < size:
        row = (f'  <parameter id="{i}"><gain>{rng.uniform(0.5, 1.5):.9f}</gain>'
               f"<phase>{rng.uniform(-math.pi, math.pi):.9f}</phase></parameter>\n")
        rows.append(row)
        total += len(row)
        i += 1
    return (head + "".join(rows) + "</auxiliary>\n").encode()
