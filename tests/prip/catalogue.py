"""The prip tests' catalogue: 32 published products (numbered 1..32) with real bytes in the
archive bucket, and 4 that are not published (101..104) and must never appear. Expected
results in the tests are worked out by hand from this table."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from shared.adapters import storage
from shared.core import checksums
from shared.core.s1time import OPEN_END

ZIP = "application/zip"
EOF_TYPE = "application/octet-stream"
KEY_PREFIX = "prip-test/"
BIG = 32  # the product the quota tests hold open: larger than any socket buffer
BIG_SIZE = 24 * 1024 * 1024


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def canonical(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pid(number: int) -> UUID:
    return UUID(f"7e57a000-0000-4000-8000-{number:012d}")


@dataclass(frozen=True)
class Product:
    number: int
    name: str | None
    product_type: str
    unit: str
    start: str
    end: str | None  # None: valid until further notice
    origin: str
    published: str | None
    size: int
    online: bool = True
    status: str = "published"
    evicts: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    logical: str | None = None

    @property
    def id(self) -> UUID:
        return pid(self.number)

    @property
    def content_type(self) -> str:
        return ZIP if (self.name or "").endswith(".zip") else EOF_TYPE

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.number:03d}/{self.name}"

    def data(self) -> bytes:
        return random.Random(self.number).randbytes(self.size)

    def attributes(self) -> dict[str, Any]:
        start = t(self.start)
        end = OPEN_END if self.end is None else t(self.end)
        return {
            "productType": self.product_type,
            "platformShortName": "SENTINEL-1",
            "platformSerialIdentifier": self.unit,
            "beginningDateTime": canonical(start),
            "endingDateTime": canonical(end),
            **self.extra,
        }


def _orbit(**extra: Any) -> dict[str, Any]:
    return {"processingCenter": "OPOD", "fileClass": "OPER", "fileVersion": "0001", **extra}


P = Product
PRODUCTS: list[Product] = [
    P(1, "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE.zip", "AUX_CAL", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:00", "2017-10-13T12:00:00", 36100,
      extra={"instrumentConfigurationId": 1, "generationDate": "2017-10-13T10:12:00.000000Z"}),
    P(2, "S1A_AUX_INS_V20171017T080000_G20171013T101216.SAFE.zip", "AUX_INS", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:16", "2017-10-13T12:00:16", 102030,
      extra={"instrumentConfigurationId": 1}),
    P(3, "S1A_AUX_PP1_V20171017T080000_G20171013T101236.SAFE.zip", "AUX_PP1", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:36", "2017-10-13T12:00:36", 4567,
      extra={"instrumentConfigurationId": 2}),
    P(4, "S1A_AUX_PP2_V20171017T080000_G20171013T101254.SAFE.zip", "AUX_PP2", "A",
      "2017-10-17T08:00:00", None, "2017-10-13T11:00:54", "2017-10-13T12:00:54", 4568,
      online=False, extra={"instrumentConfigurationId": 2}),
    P(5, "S1B_AUX_CAL_V20190514T090000_G20190513T102030.SAFE.zip", "AUX_CAL", "B",
      "2019-05-14T09:00:00", None, "2019-05-13T11:00:00", "2019-05-13T12:00:00", 37000,
      extra={"instrumentConfigurationId": 3}),
    P(6, "S1B_AUX_CAL_V20160422T000000_G20160421T130000.SAFE.zip", "AUX_CAL", "B",
      "2016-04-22T00:00:00", None, "2016-04-21T14:00:00", "2016-04-21T15:00:00", 35000,
      extra={"instrumentConfigurationId": 1}),
    P(7, "S1C_AUX_CAL_V20241205T000000_G20241204T120000.SAFE.zip", "AUX_CAL", "C",
      "2024-12-05T00:00:00", None, "2024-12-04T13:00:00", "2024-12-04T14:00:00", 38000,
      extra={"instrumentConfigurationId": 1}),
    P(8, "S1__AUX_ICE_V20160501T120000_G20160502T043607.SAFE.zip", "AUX_ICE", "",
      "2016-05-01T12:00:00", None, "2016-05-02T05:00:00", "2016-05-02T06:00:00", 25000),
    P(9, "S1__AUX_TEC_V20190805T000000_20190805T235959_G20200210T102615.SAFE.zip", "AUX_TEC",
      "", "2019-08-05T00:00:00", "2019-08-05T23:59:59", "2020-02-10T11:00:00",
      "2020-02-10T12:00:00", 8000),
    P(10, "S1__AUX_WND_V20160423T120000_G20160422T060059.SAFE.zip", "AUX_WND", "",
      "2016-04-23T12:00:00", None, "2016-04-22T07:00:00", "2016-04-22T08:00:00", 15000),
    P(11, "S1B_AUX_INS_V20190514T090000_G20190513T102100.SAFE.zip", "AUX_INS", "B",
      "2019-05-14T09:00:00", None, "2019-05-13T11:01:00", "2019-05-13T12:01:00", 99000,
      extra={"instrumentConfigurationId": 3}),
    P(12, "S1A_AUX_SCS_V20140406T133000_G20190626T100201.SAFE.zip", "AUX_SCS", "A",
      "2014-04-06T13:30:00", None, "2019-06-26T11:00:00", "2019-06-26T12:00:00", 50000),
    P(13, "S1A_OPER_AUX_POEORB_OPOD_20210317T025233_V20210224T225942_20210226T005942.EOF",
      "AUX_POEORB", "A", "2021-02-24T22:59:42", "2021-02-26T00:59:42", "2021-03-17T03:00:00",
      "2021-03-17T04:00:00", 44100,
      extra=_orbit(absoluteOrbitNumber=36500, orbitAccuracy=0.05, qualityValidated=True)),
    P(14, "S1A_OPER_AUX_POEORB_OPOD_20210318T025302_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "A", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T03:00:00",
      "2021-03-18T04:00:00", 44101,
      extra=_orbit(absoluteOrbitNumber=36515, orbitAccuracy=0.049, qualityValidated=True,
                   fileVersion="0002")),
    P(15, "S1A_OPER_AUX_POEORB_OPOD_20210319T025312_V20210226T225942_20210228T005942.EOF",
      "AUX_POEORB", "A", "2021-02-26T22:59:42", "2021-02-28T00:59:42", "2021-03-19T03:00:00",
      "2021-03-19T04:00:00", 44102,
      extra=_orbit(absoluteOrbitNumber=36530, orbitAccuracy=0.051, qualityValidated=False)),
    P(16, "S1B_OPER_AUX_POEORB_OPOD_20210318T030012_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "B", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T03:10:00",
      "2021-03-18T04:10:00", 44103, extra=_orbit(absoluteOrbitNumber=25330, orbitAccuracy=0.1)),
    P(17, "S1A_OPER_AUX_RESORB_OPOD_20210226T013512_V20210225T224318_20210226T020048.EOF",
      "AUX_RESORB", "A", "2021-02-25T22:43:18", "2021-02-26T02:00:48", "2021-02-26T02:00:00",
      "2021-02-26T02:10:00", 5600, evicts="2021-05-27T02:10:00",
      extra=_orbit(absoluteOrbitNumber=36514, qualityValidated=False)),
    P(18, "S1A_OPER_AUX_PREORB_OPOD_20210225T210011_V20210225T205010_20210226T025010.EOF",
      "AUX_PREORB", "A", "2021-02-25T20:50:10", "2021-02-26T02:50:10", "2021-02-25T21:10:00",
      "2021-02-25T21:20:00", 1200, evicts="2021-03-27T21:20:00",
      extra=_orbit(absoluteOrbitNumber=36513)),
    P(19, "S1A_OPER_MPL_ORBPRE_20171208T200309_20171215T200309_0001.EOF", "MPL_ORBPRE", "A",
      "2017-12-08T20:03:09", "2017-12-15T20:03:09", "2017-12-08T21:00:00",
      "2017-12-08T21:30:00", 7000, extra={"fileVersion": "0001"}),
    P(20, "S1A_OPER_MPL_ORBSCT_20140507T150704_99999999T999999_0020.EOF", "MPL_ORBSCT", "A",
      "2014-05-07T15:07:04", None, "2014-05-08T00:00:00", "2014-05-08T01:00:00", 650,
      extra={"fileVersion": "0020"}),
    P(21, "S1B_OPER_AUX_RESATT_OPOD_20210226T030000_V20210225T230000_20210226T030000.EOF",
      "AUX_RESATT", "B", "2021-02-25T23:00:00", "2021-02-26T03:00:00", "2021-02-26T03:05:00",
      "2021-02-26T03:15:00", 2100, extra=_orbit(absoluteOrbitNumber=25329)),
    P(22, "S1A_OPER_AMH_ERRMAT_MPC__20210225T000000_V20210224T000000_20210225T000000.EOF",
      "AMH_ERRMAT", "A", "2021-02-24T00:00:00", "2021-02-25T00:00:00", "2021-02-25T01:00:00",
      "2021-02-25T01:30:00", 1500, extra={"processingCenter": "MPC_"}),
    # The publication window of the second field request: 2024-01-01 00:00 to 00:40.
    P(23, "S1A_OPER_AUX_RESORB_OPOD_20240101T000000_V20231231T211500_20240101T005000.EOF",
      "AUX_RESORB", "A", "2023-12-31T21:15:00", "2024-01-01T00:50:00", "2023-12-31T23:59:00",
      "2024-01-01T00:00:00", 5601, evicts="2024-03-31T00:00:00",
      extra=_orbit(absoluteOrbitNumber=51801)),
    P(24, "S1B_OPER_AUX_PREORB_OPOD_20231231T235000_V20231231T232000_20240101T052000.EOF",
      "AUX_PREORB", "B", "2023-12-31T23:20:00", "2024-01-01T05:20:00", "2023-12-31T23:55:00",
      "2023-12-31T23:59:59.999999", 1210, extra=_orbit()),
    P(25, "S1A_OPER_AUX_PREORB_OPOD_20240101T003000_V20240101T000000_20240101T060000.EOF",
      "AUX_PREORB", "A", "2024-01-01T00:00:00", "2024-01-01T06:00:00", "2024-01-01T00:35:00",
      "2024-01-01T00:39:59.999", 1220, extra=_orbit(absoluteOrbitNumber=51802)),
    P(26, "S1C_OPER_AUX_RESORB_OPOD_20240101T003500_V20231231T220000_20240101T013000.EOF",
      "AUX_RESORB", "C", "2023-12-31T22:00:00", "2024-01-01T01:30:00", "2024-01-01T00:36:00",
      "2024-01-01T00:40:00", 5620, extra=_orbit(absoluteOrbitNumber=1000)),
    P(27, "S1__AUX_TRO_V20240101T000000_20240101T055959_G20240101T001000.SAFE.zip", "AUX_TRO",
      "", "2024-01-01T00:00:00", "2024-01-01T05:59:59", "2024-01-01T00:15:00",
      "2024-01-01T00:20:00", 9100),
    # Four restituted orbits of one day, for paging.
    *[P(28 + i, f"S1D_OPER_AUX_RESORB_OPOD_20250301T0{i}3000_V20250301T0{i}0000_"
                f"20250301T0{i + 3}0000.EOF",
        "AUX_RESORB", "D", f"2025-03-01T0{i}:00:00", f"2025-03-01T0{i + 3}:00:00",
        f"2025-03-01T0{i}:30:00", f"2025-03-01T0{i}:40:00", 3000 + i,
        extra=_orbit(absoluteOrbitNumber=700 + i)) for i in range(4)],
    P(BIG, "S1A_OPER_AUX_POEORB_OPOD_20250302T000000_V20250228T225942_20250302T005942.EOF",
      "AUX_POEORB", "A", "2025-02-28T22:59:42", "2025-03-02T00:59:42", "2025-03-02T01:00:00",
      "2025-03-02T02:00:00", BIG_SIZE, extra=_orbit(absoluteOrbitNumber=800)),
    # Not published: never visible, whatever they match.
    P(101, "S1B_AUX_CAL_V20200101T000000_G20191231T000000.SAFE.zip", "AUX_CAL", "B",
      "2020-01-01T00:00:00", None, "2019-12-31T01:00:00", None, 3600, status="packaged",
      online=False, extra={"instrumentConfigurationId": 3}),
    P(102, "S1A_OPER_AUX_POEORB_OPOD_20210318T120000_V20210225T225942_20210227T005942.EOF",
      "AUX_POEORB", "A", "2021-02-25T22:59:42", "2021-02-27T00:59:42", "2021-03-18T12:00:00",
      "2021-03-18T13:00:00", 4410, status="evicted", online=False, extra=_orbit()),
    P(103, None, "AUX_RESORB", "A", "2023-12-31T21:30:00", "2024-01-01T01:00:00",
      "2024-01-01T00:15:00", None, 5610, status="ingested", online=False,
      logical="S1A_OPER_AUX_RESORB_OPOD_20240101T001500_V20231231T213000_20240101T010000.EOF"),
    P(104, "S1A_OPER_AUX_RESORB_OPOD_20240101T002000_V20231231T214500_20240101T011500.EOF",
      "AUX_RESORB", "A", "2023-12-31T21:45:00", "2024-01-01T01:15:00", "2024-01-01T00:20:00",
      "2024-01-01T00:20:00", 5615, status="packaged", online=False, extra=_orbit()),
]
# 28..31 are built in a loop above; the list of numbers must stay 1..32 without gaps.
assert [p.number for p in PRODUCTS if p.status == "published"] == list(range(1, 33))

BY_NUMBER = {p.number: p for p in PRODUCTS}
PUBLISHED = [p for p in PRODUCTS if p.status == "published"]
NAME = {p.number: p.name for p in PRODUCTS}
NUMBER_OF_NAME = {p.name: p.number for p in PRODUCTS if p.name}


def checksums_of(product: Product) -> list[dict[str, str]]:
    return checksums.of_bytes(product.data()).as_odata(t(product.origin))


def seed(conn: psycopg.Connection, s3: Any, bucket: str) -> None:
    """A fresh catalogue (products, subscriptions, notifications, audit) and the bytes of
    every product in the archive (uploaded once per session: the content never changes)."""
    conn.execute("TRUNCATE products, subscriptions, notifications, audit_log")
    for p in PRODUCTS:
        published = None if p.published is None else t(p.published)
        conn.execute(
            "INSERT INTO products (id, logical_name, name, status, product_type,"
            " platform_serial, fingerprint, layout, archive_key, distribution_key,"
            " content_type, content_length, checksums, content_start, content_end,"
            " origin_date, publication_date, modification_date, eviction_date, online,"
            " attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s)",
            (p.id, p.logical or (p.name or "").removesuffix(".zip"), p.name, p.status,
             p.product_type, p.unit, "fingerprint", "file", p.key,
             p.key if p.name else None, p.content_type, p.size, json.dumps(checksums_of(p)),
             t(p.start), OPEN_END if p.end is None else t(p.end), t(p.origin), published,
             published or t(p.origin), OPEN_END if p.evicts is None else t(p.evicts),
             p.online, json.dumps(p.attributes())),
        )
        if p.name and p.online:
            found = storage.head(s3, bucket, p.key)
            if found is None or found["size"] != p.size:
                storage.put_bytes(s3, bucket, p.key, p.data(), content_type=p.content_type)
    conn.execute("ANALYZE products")


def audit_rows(settings, *, actor: str, since_id: int = 0, wait_for: int = 0) -> list[dict]:
    """Audit rows of `actor` after `since_id`; waits (briefly) for `wait_for` of them: a
    stream's row is written when the server closes it, just after the client got the end."""
    # Generous: under load the server may close a stream well after the client got its end.
    deadline = time.monotonic() + 30
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        while True:
            rows = conn.execute("SELECT * FROM audit_log WHERE actor = %s AND id > %s"
                                " ORDER BY id", (actor, since_id)).fetchall()
            if len(rows) >= wait_for or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def last_audit_id(settings) -> int:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
