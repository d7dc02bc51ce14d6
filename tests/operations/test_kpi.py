"""`auxip kpi` against seeded rows with known dates: every figure is the catalogue's own
(publication_date - origin_date of the products published in the period, nearest rank)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from shared.adapters.settings import Settings
from shared.operations import kpi
from tests.operations.conftest import cli, query

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 2, tzinfo=UTC)


def _product(conn: psycopg.Connection, product_type: str, origin: datetime,
             published: datetime | None) -> uuid.UUID:
    product_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO products (id, logical_name, name, status, product_type, fingerprint, layout,"
        " archive_key, content_start, content_end, origin_date, publication_date, online)"
        " VALUES (%s, %s, %s, %s, %s, 'f', 'file', 'k', %s, %s, %s, %s, %s)",
        (product_id, f"P{product_id}", f"P{product_id}", "published" if published else "ingested",
         product_type, origin, origin, origin, published, published is not None))
    return product_id


@pytest.fixture
def seeded(settings: Settings, clean_catalogue: None) -> None:
    noon = SINCE + timedelta(hours=12)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # AUX_RESORB: 20 products published within the period, 1 to 20 minutes after arrival.
        for i in range(1, 21):
            _product(conn, "AUX_RESORB", noon, noon + timedelta(minutes=i))
        # AUX_CAL: 3 published (7 s, 2 h, 30 s) and one still waiting.
        for delay in (timedelta(seconds=7), timedelta(hours=2), timedelta(seconds=30)):
            _product(conn, "AUX_CAL", noon, noon + delay)
        _product(conn, "AUX_CAL", noon, None)
        # Outside the period on both ends: counted nowhere.
        _product(conn, "AUX_RESORB", SINCE - timedelta(hours=2), SINCE - timedelta(hours=1))
        _product(conn, "AUX_RESORB", UNTIL + timedelta(hours=1), UNTIL + timedelta(hours=2))
        # Arrived in the period, published after it: arrived, not published.
        _product(conn, "AUX_POEORB", UNTIL - timedelta(hours=1), UNTIL + timedelta(hours=1))
        for reason, count in (("virus_found", 1), ("name_invalid", 3)):
            for _ in range(count):
                conn.execute("INSERT INTO rejections (name, source_bucket, source_key, reason,"
                             " detail, rejected_at) VALUES ('x', 'b', 'k', %s, 'd', %s)",
                             (reason, noon))
        conn.execute("INSERT INTO rejections (name, source_bucket, source_key, reason, detail,"
                     " rejected_at) VALUES ('x', 'b', 'k', 'empty', 'd', %s)", (UNTIL,))
        for route, status, count in (("s3-mirror", "completed", 9), ("s3-mirror", "failed", 1),
                                     ("sftp-pdgs", "completed", 2), ("sftp-pdgs", "pending", 5)):
            for _ in range(count):
                conn.execute("INSERT INTO transfers (id, route, product_id, target, status,"
                             " finished_at) VALUES (%s, %s, %s, 't', %s, %s)",
                             (uuid.uuid4(), route, uuid.uuid4(), status,
                              None if status == "pending" else noon))


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


@pytest.mark.usefixtures("seeded")
def test_kpi_figures_are_the_catalogues_own(settings: Settings) -> None:
    with psycopg.connect(settings.database_url) as conn:
        report = kpi.report(conn, SINCE, UNTIL, target_s=600)
    by_type = {t.product_type: t for t in report.types}
    assert set(by_type) == {"AUX_RESORB", "AUX_CAL", "AUX_POEORB"}

    # Expected figures straight from the rows' timestamps.
    for product_type, figures in by_type.items():
        rows = query(settings, "SELECT origin_date, publication_date FROM products"
                               " WHERE product_type = %s", product_type)
        delays = [(r["publication_date"] - r["origin_date"]).total_seconds() for r in rows
                  if r["publication_date"] and SINCE <= r["publication_date"] < UNTIL]
        arrived = [r for r in rows if SINCE <= r["origin_date"] < UNTIL]
        assert (figures.arrived, figures.published) == (len(arrived), len(delays))
        if delays:
            assert figures.timeliness_p50_s == _nearest_rank(delays, 0.5)
            assert figures.timeliness_p95_s == _nearest_rank(delays, 0.95)
            assert figures.timeliness_max_s == max(delays)
            assert figures.within_target == sum(d <= 600 for d in delays)
        else:
            assert figures.timeliness_p50_s is None and figures.within_target is None

    # And the same in plain numbers, for the reader.
    resorb, cal = by_type["AUX_RESORB"], by_type["AUX_CAL"]
    assert (resorb.published, resorb.timeliness_p50_s, resorb.timeliness_p95_s,
            resorb.timeliness_max_s, resorb.within_target) == (20, 600, 1140, 1200, 10)
    assert (cal.arrived, cal.published, cal.timeliness_p50_s, cal.timeliness_max_s) == (
        4, 3, 30, 7200)
    assert (by_type["AUX_POEORB"].arrived, by_type["AUX_POEORB"].published) == (1, 0)
    assert report.rejections == {"name_invalid": 3, "virus_found": 1}
    assert {t.route: t.success_rate for t in report.transfers} == {"s3-mirror": 0.9,
                                                                    "sftp-pdgs": 1.0}
    assert report.transfer_success_rate == 11 / 12


@pytest.mark.usefixtures("seeded")
def test_kpi_command_prints_the_report() -> None:
    runner = CliRunner()
    args = ["kpi", "--since", SINCE.isoformat(), "--until", UNTIL.isoformat(), "--target", "600"]
    document = json.loads(runner.invoke(cli(), [*args, "--json"]).output)
    resorb = next(t for t in document["types"] if t["product_type"] == "AUX_RESORB")
    assert (resorb["timeliness_p95_s"], resorb["within_target"]) == (1140, 10)
    assert document["transfer_success_rate"] == 11 / 12
    table = runner.invoke(cli(), args, env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    assert "AUX_RESORB" in table.output and "19.0 min" in table.output  # p95 = 1140 s
    assert "virus_found" in table.output and "91.7%" in table.output
