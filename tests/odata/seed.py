"""A small hand-made catalogue: 31 published products (numbered P1..P31, Id ...0001 to
...0031) and 4 that are not published (U1..U4) and must never appear. Expected results in
the tests are worked out by hand from this table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import psycopg

OPEN = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
OPEN_TEXT = "9999-12-31T23:59:59.999999Z"
EOF_TYPE = "application/octet-stream"
ZIP_TYPE = "application/zip"


def t(text: str) -> datetime:
    """`2021-02-25T22:59:42` or with fraction, UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def canonical(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pid(number: int) -> UUID:
    return UUID(f"00000000-0000-4000-8000-{number:012d}")


UNPUBLISHED_IDS = {pid(101), pid(102), pid(103), pid(104)}


def _product(number: int, name: str | None, product_type: str, unit: str, start: str,
             end: str | None, origin: str, pub: str | None, length: int, *,
             online: bool = True, evict: str | None = None, status: str = "published",
             logical: str | None = None, **extra: object) -> dict[str, object]:
    content_start = t(start)
    content_end = OPEN if end is None else t(end)
    attributes: dict[str, object] = {
        "productType": product_type,
        "platformShortName": "SENTINEL-1",
        "platformSerialIdentifier": unit,
        "beginningDateTime": canonical(content_start),
        "endingDateTime": OPEN_TEXT if end is None else canonical(content_end),
    }
    attributes.update(extra)
    shown = name or logical or ""
    return {
        "id": pid(number),
        "logical_name": logical or shown.removesuffix(".zip"),
        "name": name,
        "status": status,
        "product_type": product_type,
        "platform_serial": unit,
        "content_type": ZIP_TYPE if shown.endswith(".zip") else EOF_TYPE,
        "content_length": length,
        "content_start": content_start,
        "content_end": content_end,
        "origin_date": t(origin),
        "publication_date": None if pub is None else t(pub),
        "modification_date": t(pub or origin),
        "eviction_date": OPEN if evict is None else t(evict),
        "online": online,
        "attributes": attributes,
    }


def _orbit(**extra: object) -> dict[str, object]:
    return {"processingCenter": "OPOD", "fileClass": "OPER", "fileVersion": "0001", **extra}


P = _product
PRODUCTS: list[dict[str, object]] = [
    P(1, "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.zip", "AUX_CAL", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:00", "2017-10-13T12:00:00", 361001,
      instrumentConfigurationId=1, generationDate="2017-10-13T10:12:00.000000Z"),
    P(2, "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE.zip", "AUX_INS", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:16", "2017-10-13T12:00:16", 1020304,
      instrumentConfigurationId=1),
    P(3, "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE.zip", "AUX_PP1", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:36", "2017-10-13T12:00:36", 45678,
      instrumentConfigurationId=2),
    P(4, "S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE.zip", "AUX_PP2", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:54", "2017-10-13T12:00:54", 45679,
      online=False, instrumentConfigurationId=2),
    P(5, "S1B_AUX_CAL_V20190514T090000_G20190513T102030.SAFE.zip", "AUX_CAL", "B",
      "2019-05-14T09:00:00", None, "2019-05-13T11:00:00", "2019-05-13T12:00:00", 370000,
      instrumentConfigurationId=3),
    P(6, "S1B_AUX_CAL_V20160422T000000_G20160421T130000.SAFE.zip", "AUX_CAL", "B",
      "2016-04-22T00:00:00", None, "2016-04-21T14:00:00", "2016-04-21T15:00:00", 350000,
      instrumentConfigurationId=1),
    P(7, "S1C_AUX_CAL_V20241205T000000_G20241204T120000.SAFE.zip", "AUX_CAL", "C",
      "2024-12-05T00:00:00", None, "2024-12-04T13:00:00", "2024-12-04T14:00:00", 380000,
      instrumentConfigurationId=1),
    P(8, "S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE.zip", "AUX_ICE", "",
      "2016-05-01T12:00:00", None, "2016-05-02T05:00:00", "2016-05-02T06:00:00", 2500000),
    P(9, "S1__AUX_TEC_V20190805T000000_20190805T235959_G20200210T102615.SAFE.zip", "AUX_TEC",
      "", "2019-08-05T00:00:00", "2019-08-05T23:59:59", "2020-02-10T11:00:00",
      "2020-02-10T12:00:00", 800000),
    P(10, "S1__AUX_TRO_V20190805T180000_20190805T235959_G20200518T084534.SAFE.zip", "AUX_TRO",
      "", "2019-08-05T18:00:00", "2019-08-05T23:59:59", "2020-05-18T09:00:00",
      "2020-05-18T10:00:00", 900000),
    P(11, "S1__AUX_WAV_V20110801T000000_G20111026T141850.SAFE.zip", "AUX_WAV", "",
      "2011-08-01T00:00:00", None, "2016-01-01T00:00:00", "2016-01-01T01:00:00", 3000000),
    P(12, "S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE.zip", "AUX_WND", "",
      "2016-04-23T12:00:00", None, "2016-04-22T07:00:00", "2016-04-22T08:00:00", 1500000),
    P(13, "S1A_OPER_AUX_POEORB_OPOD_20210317T025233_V20210224T225942_20210226T005942.EOF",
      "AUX_POEORB", "A", "2021-02-24T22:59:42", "2021-02-26T00:59:42", "2021-03-17T03:00:00",
      "2021-03-17T04:00:00", 4410000,
      **_orbit(absoluteOrbitNumber=36500, orbitAccuracy=0.05, qualityValidated=True)),
    P(14, "S1A_OPER_AUX_POEORB_OPOD_20210318T025302_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "A", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T03:00:00",
      "2021-03-18T04:00:00", 4410100,
      **_orbit(absoluteOrbitNumber=36515, orbitAccuracy=0.049, qualityValidated=True,
               fileVersion="0002")),
    P(15, "S1A_OPER_AUX_POEORB_OPOD_20210319T025312_V20210226T225942_20210228T005942.EOF",
      "AUX_POEORB", "A", "2021-02-26T22:59:42", "2021-02-28T00:59:42", "2021-03-19T03:00:00",
      "2021-03-19T04:00:00", 4410200,
      **_orbit(absoluteOrbitNumber=36530, orbitAccuracy=0.051, qualityValidated=False)),
    P(16, "S1B_OPER_AUX_POEORB_OPOD_20210318T030012_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "B", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T03:10:00",
      "2021-03-18T04:10:00", 4410300, **_orbit(absoluteOrbitNumber=25330, orbitAccuracy=0.1)),
    P(17, "S1A_OPER_AUX_RESORB_OPOD_20210226T013512_V20210225T224318_20210226T020048.EOF",
      "AUX_RESORB", "A", "2021-02-25T22:43:18", "2021-02-26T02:00:48", "2021-02-26T02:00:00",
      "2021-02-26T02:10:00", 560000, online=False, evict="2021-05-27T02:10:00",
      **_orbit(absoluteOrbitNumber=36514, qualityValidated=False)),
    P(18, "S1A_OPER_AUX_RESORB_OPOD_20171213T143838_V20171213T102737_20171213T134507.EOF",
      "AUX_RESORB", "A", "2017-12-13T10:27:37", "2017-12-13T13:45:07", "2017-12-13T15:00:00",
      "2017-12-13T15:10:00", 550000, online=False, evict="2018-03-13T15:10:00",
      **_orbit(absoluteOrbitNumber=19716, processingCenter=None)),
    P(19, "S1A_OPER_AUX_PREORB_OPOD_20210225T210011_V20210225T205010_20210226T025010.EOF",
      "AUX_PREORB", "A", "2021-02-25T20:50:10", "2021-02-26T02:50:10", "2021-02-25T21:10:00",
      "2021-02-25T21:20:00", 120000, evict="2021-03-27T21:20:00",
      **_orbit(absoluteOrbitNumber=36513)),
    P(20, "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF", "MPL_ORBPRE", "A",
      "2017-12-08T20:03:09", "2017-12-15T20:03:09", "2017-12-08T21:00:00",
      "2017-12-08T21:30:00", 700000, fileVersion="0001"),
    P(21, "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0020.EOF", "MPL_ORBSCT", "A",
      "2014-05-07T15:07:04", None, "2014-05-08T00:00:00", "2014-05-08T01:00:00", 65000,
      fileVersion="0020"),
    P(22, "S1B_OPER_MPL_ORBSCT_20160425T224606_99999999T999999_0017.EOF", "MPL_ORBSCT", "B",
      "2016-04-25T22:46:06", None, "2016-04-26T00:00:00", "2016-04-26T01:00:00", 66000,
      fileVersion="0017"),
    P(23, "S1B_OPER_AUX_RESATT_OPOD_20210226T030000_V20210225T230000_20210226T030000.EOF",
      "AUX_RESATT", "B", "2021-02-25T23:00:00", "2021-02-26T03:00:00", "2021-02-26T03:05:00",
      "2021-02-26T03:15:00", 210000, **_orbit(absoluteOrbitNumber=25329)),
    P(24, "S1A_OPER_AMH_ERRMAT_MPC__20210225T000000_V20210224T000000_20210225T000000.EOF",
      "AMH_ERRMAT", "A", "2021-02-24T00:00:00", "2021-02-25T00:00:00", "2021-02-25T01:00:00",
      "2021-02-25T01:30:00", 15000, processingCenter="MPC_"),
    P(25, "S1A_OPER_AMV_ERRMAT_MPC__20210225T000000_V20210224T000000_20210225T000000.EOF",
      "AMV_ERRMAT", "A", "2021-02-24T00:00:00", "2021-02-25T00:00:00", "2021-02-25T01:00:00",
      "2021-02-25T01:31:00", 15500, processingCenter="MPC_"),
    P(26, "S1A_AUX_SCS_V20140406T133000_G20190626T100201.SAFE.zip", "AUX_SCS", "A",
      "2014-04-06T13:30:00", None, "2019-06-26T11:00:00", "2019-06-26T12:00:00", 5000000),
    P(27, "S1A_OPER_AUX_RESORB_OPOD_20240101T000000_V20231231T211500_20240101T005000.EOF",
      "AUX_RESORB", "A", "2023-12-31T21:15:00", "2024-01-01T00:50:00", "2023-12-31T23:59:00",
      "2024-01-01T00:00:00", 560100, evict="2024-03-31T00:00:00",
      **_orbit(absoluteOrbitNumber=51801)),
    P(28, "S1B_OPER_AUX_PREORB_OPOD_20231231T235000_V20231231T232000_20240101T052000.EOF",
      "AUX_PREORB", "B", "2023-12-31T23:20:00", "2024-01-01T05:20:00", "2023-12-31T23:55:00",
      "2023-12-31T23:59:59.999999", 121000, **_orbit()),
    P(29, "S1A_OPER_AUX_PREORB_OPOD_20240101T003000_V20240101T000000_20240101T060000.EOF",
      "AUX_PREORB", "A", "2024-01-01T00:00:00", "2024-01-01T06:00:00", "2024-01-01T00:35:00",
      "2024-01-01T00:39:59.999", 122000, **_orbit(absoluteOrbitNumber=51802)),
    P(30, "S1C_OPER_AUX_RESORB_OPOD_20240101T003500_V20231231T220000_20240101T013000.EOF",
      "AUX_RESORB", "C", "2023-12-31T22:00:00", "2024-01-01T01:30:00", "2024-01-01T00:36:00",
      "2024-01-01T00:40:00", 562000, **_orbit(absoluteOrbitNumber=1000)),
    P(31, "S1__AUX_TRO_V20240101T000000_20240101T055959_G20240101T001000.SAFE.zip", "AUX_TRO",
      "", "2024-01-01T00:00:00", "2024-01-01T05:59:59", "2024-01-01T00:15:00",
      "2024-01-01T00:20:00", 910000),
    # Not published: never visible, whatever they match.
    P(101, "S1B_AUX_CAL_V20200101T000000_G20191231T000000.SAFE.zip", "AUX_CAL", "B",
      "2020-01-01T00:00:00", None, "2019-12-31T01:00:00", None, 360000, status="packaged",
      instrumentConfigurationId=3),
    P(102, "S1A_OPER_AUX_POEORB_OPOD_20210318T120000_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "A", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T12:00:00",
      "2021-03-18T13:00:00", 4410400, status="evicted", online=False,
      **_orbit(absoluteOrbitNumber=36515, orbitAccuracy=0.049, qualityValidated=True)),
    P(103, None, "AUX_RESORB", "A", "2023-12-31T21:30:00", "2024-01-01T01:00:00",
      "2024-01-01T00:15:00", None, 561000, status="ingested", online=False,
      logical="S1A_OPER_AUX_RESORB_OPOD_20240101T001500_V20231231T213000_20240101T010000.EOF"),
    P(104, "S1A_OPER_AUX_RESORB_OPOD_20240101T002000_V20231231T214500_20240101T011500.EOF",
      "AUX_RESORB", "A", "2023-12-31T21:45:00", "2024-01-01T01:15:00", "2024-01-01T00:20:00",
      "2024-01-01T00:20:00", 561500, status="packaged", **_orbit(absoluteOrbitNumber=51800)),
]

PUBLISHED = [p for p in PRODUCTS if p["status"] == "published"]
NUMBER_OF = {p["id"]: int(str(p["id"])[-12:]) for p in PRODUCTS}

_COLUMNS = ("id", "logical_name", "name", "status", "product_type", "platform_serial",
            "content_type", "content_length", "content_start", "content_end", "origin_date",
            "publication_date", "modification_date", "eviction_date", "online", "attributes")


def seed(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM products")
    for p in PRODUCTS:
        values = [json.dumps(p[c]) if c == "attributes" else p[c] for c in _COLUMNS]
        conn.execute(
            f"INSERT INTO products ({', '.join(_COLUMNS)}, fingerprint, layout, archive_key)"
            f" VALUES ({', '.join(['%s'] * len(_COLUMNS))}, 'md5', 'file', 'archive/key')",
            values,
        )
