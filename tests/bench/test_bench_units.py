"""The benchmarks' own arithmetic and parsing, without a stack: percentiles, verdicts, the
table, the py-spy summary and the generated aux files."""

from __future__ import annotations

import math
from pathlib import Path

from bench import figures, hops, report
from bench.figures import Figure, Outcome, Target
from bench.ingest import MAX_BYTES, MIN_BYTES, aux_files
from bench.profile import summarise
from shared.core import naming


def test_percentile_interpolates_between_ranks() -> None:
    assert figures.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert figures.percentile([5.0], 0.95) == 5.0
    assert figures.percentile(list(range(101)), 0.95) == 95.0
    assert math.isnan(figures.percentile([], 0.5))


def test_targets_and_ratio() -> None:
    assert figures.at_most(25.0, 25.0, "<= 25 ms").met
    assert not figures.below(2.0, 2.0, "< 2 s").met
    assert not figures.at_least(math.nan, 1.0, ">= 1").met  # nothing measured: not met
    figure = Figure("b", "f", 10.0, "ms", 4.0, (Target("t1", True), Target("t2", False)))
    assert figure.ratio == 2.5
    assert [t.text for t in figure.missed] == ["t2"]
    assert Figure("b", "f", 1.0, "ms").ratio is None


def test_table_and_missed_lines() -> None:
    outcome = Outcome("query", [Figure("query", "F1 p95", 30.0, "ms", 10.0,
                                       (figures.at_most(30.0, 25.0, "<= 25 ms"),))])
    table = report.console_table([outcome])
    assert "F1 p95" in table and "3.00" in table and "NO" in table
    assert report.missed([outcome]) == ["query / F1 p95: <= 25 ms missed, measured 30.0 ms"]
    markdown = report.markdown_table([outcome])
    assert markdown[0].startswith("| bench |") and len(markdown) == 3


def test_profile_summary_keeps_handler_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "run (threading.py:1);handle (main.py:35);ingest (shared/pipeline/ingestion/ingest.py:72);"
        "copy (shared/adapters/storage.py:186);_make_api_call (botocore/client.py:1) 7\n"
        "run (threading.py:1);handle (gunicorn/workers/gthread.py:553);select (selectors.py:4) 90\n"
        "run (threading.py:1);handle (main.py:35);_read_reply (shared/adapters/virus_scan.py:9) 3\n")
    inside = summarise(raw, "functions/ingest/main.py")
    assert inside.samples == 10
    assert inside.by_ours[0] == ("shared/adapters/storage.py: copy", 7)
    assert inside.by_leaf[0] == ("botocore/client.py: _make_api_call", 7)
    assert summarise(raw, None).samples == 100


def test_hop_table_charges_each_sample_to_its_innermost_library(tmp_path: Path) -> None:
    raw = tmp_path / "hop.txt"
    raw.write_text(
        # botocore under our storage module: the S3 client's, its socket call included
        "handle (main.py:35);copy (shared/adapters/storage.py:186);"
        "_make_api_call (botocore/client.py:1);sendall (ssl.py:2) 6\n"
        # our XML parsing, down in the standard library
        "handle (main.py:35);_header (shared/core/metadata.py:9);feed (xml/etree/ElementTree.py:1) 3\n"
        # nothing but the standard library
        "run (threading.py:1);wait (threading.py:2) 1\n")
    fractions, samples = hops.shares(raw, Path("/repo"))
    assert samples == 10
    assert fractions == {"S3 client (botocore, urllib3)": 0.6, "metadata (XML)": 0.3,
                         hops.OTHER: 0.1}
    lines = hops.table([hops.Hop("ingest", 20.0, fractions, samples),
                        hops.Hop("router", 5.0, {"router code": 1.0}, 4)])
    assert lines[0] == "| CPU ms per file | ingest | router | all |"
    assert lines[2] == "| S3 client (botocore, urllib3) | 12.0 |  | 12.0 |"
    assert "| **total (/proc)** | **20.0** | **5.0** | **25.0** |" in lines
    # a full path from a virtual environment counts like py-spy's short one
    assert hops.category(["/x/.venv/lib/python3.11/site-packages/psycopg/cursor.py"],
                         Path("/x")) == "PostgreSQL client (psycopg)"


def test_aux_files_are_valid_distinct_and_small() -> None:
    files = aux_files(60, seed=5)
    names = [f.key for f in files]
    assert len(set(names)) == len(names)
    table = naming.load_type_table(None)
    for f in files:
        naming.parse(f.key, table)  # raises NameRejected when the name is not a valid one
        assert MIN_BYTES // 2 <= len(f.body) <= MAX_BYTES * 1.3, (f.key, len(f.body))
    assert any(n.endswith(".EOF") for n in names) and any(n.endswith(".SAFE.zip") for n in names)
    assert set(names).isdisjoint(f.key for f in aux_files(60, seed=5))  # never the same twice
