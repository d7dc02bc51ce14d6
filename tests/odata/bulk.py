"""1,000,000 realistic product rows in one INSERT ... SELECT, for the query benchmark.

Twelve years of four units. Per unit: AUX_RESORB every 3 h (validity 3 h 20 min),
AUX_RESATT every 100 min, AUX_PREORB every ~54 min (the remainder up to 1M), AUX_POEORB
and MPL_ORBPRE and the ERRMATs daily, MPL_TIMELINE weekly, AUX_CAL/INS/PP1/PP2/SCS/SCF/
ITC/ML2 four a year (open-ended), MPL_ORBSCT five in all; for all units (S1_): AUX_WND,
AUX_WAV, AUX_TRO every 6 h, AUX_TEC and AUX_ICE daily. About 3 % are not published.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg

TOTAL = 1_000_000
SEED_VERSION = 3
FIRST = "2014-04-03 00:00:00+00"
SPAN = timedelta(days=4383)  # 12 years
UNITS = ("A", "B", "C", "D")

# (type, family, period, validity or None for open-ended, generation offset, units)
_SEGMENTS = [
    ("AUX_RESORB", "orbit", timedelta(hours=3), timedelta(minutes=200), timedelta(hours=3, minutes=40), UNITS),
    ("AUX_RESATT", "orbit", timedelta(minutes=100), timedelta(minutes=110), timedelta(hours=2), UNITS),
    ("AUX_POEORB", "orbit", timedelta(days=1), timedelta(hours=26), timedelta(days=20), UNITS),
    ("MPL_ORBPRE", "mpl", timedelta(days=1), timedelta(days=7), timedelta(hours=-2), UNITS),
    ("AMH_ERRMAT", "orbit", timedelta(days=1), timedelta(days=1), timedelta(days=1, hours=1), UNITS),
    ("AMV_ERRMAT", "orbit", timedelta(days=1), timedelta(days=1), timedelta(days=1, hours=1), UNITS),
    ("MPL_TIMELINE", "mpl", timedelta(days=7), timedelta(days=14), timedelta(days=-3), UNITS),
    *[(t, "safe", timedelta(days=91), None, timedelta(days=-4), UNITS)
      for t in ("AUX_CAL", "AUX_INS", "AUX_PP1", "AUX_PP2", "AUX_SCS", "AUX_SCF", "AUX_ITC",
                "AUX_ML2")],
    ("MPL_ORBSCT", "mpl", timedelta(days=800), None, timedelta(hours=1), UNITS),
    ("AUX_WND", "safe", timedelta(hours=6), timedelta(hours=6), timedelta(hours=-12), ("",)),
    ("AUX_WAV", "safe", timedelta(hours=6), timedelta(hours=6), timedelta(hours=-12), ("",)),
    ("AUX_TRO", "safe_stop", timedelta(hours=6), timedelta(hours=6) - timedelta(seconds=1), timedelta(days=3), ("",)),
    ("AUX_TEC", "safe_stop", timedelta(days=1), timedelta(days=1) - timedelta(seconds=1), timedelta(days=2), ("",)),
    ("AUX_ICE", "safe", timedelta(days=1), None, timedelta(hours=16), ("",)),
]


def segments() -> list[tuple]:
    rows = []
    for product_type, family, period, validity, gen, units in _SEGMENTS:
        n = min(int(SPAN / period), 5) if product_type == "MPL_ORBSCT" else int(SPAN / period)
        for unit in units:
            rows.append((product_type, unit, family, period, validity, gen, n))
    rest = TOTAL - sum(r[-1] for r in rows)
    per_unit, extra = divmod(rest, len(UNITS))
    for k, unit in enumerate(UNITS):
        n = per_unit + (1 if k < extra else 0)
        rows.append(("AUX_PREORB", unit, "orbit", SPAN / n, timedelta(hours=6),
                     timedelta(hours=-1), n))
    assert sum(r[-1] for r in rows) == TOTAL
    return rows


_INSERT = """
WITH seg(product_type, unit, family, period, validity, gen, n) AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::interval[], %s::interval[],
                         %s::interval[], %s::int[])
), g AS (
    SELECT s.*, i,
           CASE WHEN s.unit = '' THEN '_' ELSE s.unit END AS uc,
           timestamptz '{first}' + i * s.period
               + (ascii(coalesce(nullif(s.unit, ''), '@')) - 64) * interval '7 minutes' AS st
    FROM seg s, LATERAL generate_series(0, s.n - 1) AS i
), h AS (
    SELECT g.*,
           CASE WHEN g.validity IS NULL THEN timestamptz '9999-12-31 23:59:59.999999+00'
                ELSE g.st + g.validity END AS en,
           g.st + g.gen + (i %% 97) * interval '1 second' AS gn,
           hashint4(i * 31 + length(g.product_type) * 7 + ascii(g.uc)) AS hsh
    FROM g
), n AS (
    SELECT h.*,
      CASE h.family
        WHEN 'safe' THEN format('S1%%s_%%s_V%%s_G%%s.SAFE.zip', uc, product_type,
             to_char(st AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             to_char(gn AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'))
        WHEN 'safe_stop' THEN format('S1%%s_%%s_V%%s_%%s_G%%s.SAFE.zip', uc, product_type,
             to_char(st AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             to_char(en AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             to_char(gn AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'))
        WHEN 'orbit' THEN format('S1%%s_OPER_%%s_%%s_%%s_V%%s_%%s.EOF', uc, product_type,
             CASE WHEN product_type LIKE 'AM%%' THEN 'MPC_' ELSE 'OPOD' END,
             to_char(gn AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             to_char(st AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             to_char(en AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'))
        ELSE format('S1%%s_OPER_%%s_%%s_%%s_%%s.EOF', uc, product_type,
             to_char(st AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
             CASE WHEN validity IS NULL THEN '99999999T999999'
                  ELSE to_char(en AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS') END,
             lpad((i %% 10000 + 1)::text, 4, '0'))
      END AS nm
    FROM h
)
INSERT INTO products (id, logical_name, name, status, product_type, platform_serial,
    fingerprint, layout, archive_key, content_type, content_length, content_start,
    content_end, origin_date, publication_date, modification_date, eviction_date, online,
    attributes)
SELECT md5(nm)::uuid, regexp_replace(nm, '\\.zip$', ''), nm,
       CASE WHEN abs(hsh) %% 100 < 3 THEN 'evicted' ELSE 'published' END,
       product_type, unit, md5(nm), CASE WHEN family LIKE 'safe%%' THEN 'safe-archive' ELSE 'file' END,
       nm, CASE WHEN nm LIKE '%%.zip' THEN 'application/zip' ELSE 'application/octet-stream' END,
       10000 + abs(hsh) %% 5000000, st, en, gn + interval '5 minutes',
       gn + interval '10 minutes', gn + interval '10 minutes',
       timestamptz '9999-12-31 23:59:59.999999+00', abs(hsh) %% 100 >= 3,
       jsonb_build_object(
           'productType', product_type, 'platformShortName', 'SENTINEL-1',
           'platformSerialIdentifier', unit,
           'beginningDateTime', to_char(st AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'endingDateTime', to_char(en AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'generationDate', to_char(gn AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
       || CASE WHEN family = 'orbit' THEN jsonb_build_object(
              'processingCenter', CASE WHEN product_type LIKE 'AM%%' THEN 'MPC_' ELSE 'OPOD' END,
              'fileClass', 'OPER', 'fileVersion', '0001', 'absoluteOrbitNumber', 1 + i)
          ELSE '{{}}'::jsonb END
FROM n
"""


def _secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Indexes of products that no constraint owns: dropped while loading, then rebuilt
    from their own definitions (so the benchmark always uses the migrations' indexes)."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = 'products'::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"
    ).fetchall()


def is_seeded(conn: psycopg.Connection) -> bool:
    conn.execute("CREATE TABLE IF NOT EXISTS odata_bulk_seed (version int NOT NULL)")
    row = conn.execute("SELECT max(version) FROM odata_bulk_seed").fetchone()
    return bool(row and row[0] == SEED_VERSION)


def seed(conn: psycopg.Connection) -> float:
    """Load the rows (autocommit connection); returns seconds spent."""
    began = time.monotonic()
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET synchronous_commit = off")
    indexes = _secondary_indexes(conn)
    with conn.transaction():
        conn.execute("TRUNCATE products CASCADE")
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        columns = list(zip(*segments()))
        conn.execute(_INSERT.format(first=FIRST), [list(c) for c in columns])
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("DELETE FROM odata_bulk_seed")
        conn.execute("INSERT INTO odata_bulk_seed VALUES (%s)", (SEED_VERSION,))
    conn.execute("VACUUM ANALYZE products")
    return time.monotonic() - began
