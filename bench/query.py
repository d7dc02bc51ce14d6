"""Query benchmark: the OData API over HTTP on the 1,000,000-product catalogue, against the
equivalent hand-written SQL through psycopg.

The catalogue is the OData tests' (tests/odata/bulk.py: twelve years of four units, kept
in database `auxip_odata_perf` with a seed version; seeded here when missing, ~3 min). A
second prip process, started as the stack starts its functions (functions-framework,
gunicorn) but with AUXIP_DATABASE_URL pointing at that database, answers the requests; a
reader's bearer token goes with each, as clients send it.

Per query shape: fresh random literals for every request (the same draw for the API and
the SQL), API and SQL timed alternately so that noise from the shared machine falls on
both; the first draws check that both return the same Ids; EXPLAIN of the API's statement
names the indexes it uses.

The bare HTTP floor: a no-op functions-framework HTTP function (bench/baseline_function)
started exactly as the query's prip (same server, gunicorn configuration, environment),
asked in the same loop as the API and the SQL with the same headers. It is its own row,
and the ratio target is API p95 <= 2 x (SQL p95 + floor p95) of the same query's loop.

    python -m bench.query [--runs N] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import conninfo

from bench.figures import Figure, Outcome, at_most, percentile
from bench.stack import (
    FLOOR_OFFSET,
    PERF_PRIP_OFFSET,
    REPO,
    BenchStack,
    bench_stack,
    configured_server,
    connect,
)
from devstack.stack import postgres, processes
from devstack.stack import up as stack_up
from shared.adapters.catalogue.migrations import upgrade
from shared.odata import build_products_query, parse_query_options
from tests.odata import bulk

PERF_DATABASE = "auxip_odata_perf"
PERF_PRIP = "prip-perf"
FLOOR = "http-floor"
FLOOR_SOURCE = REPO / "bench" / "baseline_function" / "main.py"
RUNS = 60
WARMUP = 5  # per shape; these also check API and SQL agree
TARGET_MS = 25.0
TARGET_RATIO = 2.0

_COLUMNS = ("id, name, content_type, content_length, checksums, content_start, content_end,"
            " origin_date, publication_date, modification_date, eviction_date, online,"
            " product_type, platform_serial")
_WITH_ATTRIBUTES = _COLUMNS + ", attributes"
_PUBLISHED = "FROM products WHERE status = 'published'"


@dataclass(frozen=True)
class Case:
    """One request: OData query options (or a keyed path) and the hand-written SQL."""

    params: dict[str, str]
    sql: str
    sql_params: tuple[object, ...] = ()
    path: str = "/Products"
    counts: bool = False  # the answer is @odata.count (SQL: one count(*))


@dataclass
class Samples:
    api: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    """Products to ask for by Id and Name (drawn from the catalogue once)."""

    ids: list[str]
    names: list[str]


def _instant(rng: random.Random) -> datetime:
    start = datetime(2015, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(0, 10 * 365 * 86400))


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _attr(name: str, value: str) -> str:
    return (f"Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '{name}' and "
            f"att/OData.CSC.StringAttribute/Value eq '{value}')")


def _orbit_at(product_type: str) -> Callable[[random.Random, Sample], Case]:
    def make(rng: random.Random, _: Sample) -> Case:
        t, unit = _instant(rng), rng.choice("ABCD")
        return Case(
            {"$filter": f"startswith(Name,'S1{unit}') and contains(Name,'{product_type}') and "
                        f"ContentDate/Start lt {_z(t)} and "
                        f"ContentDate/End gt {_z(t + timedelta(hours=1))}",
             "$orderby": "ContentDate/Start asc", "$top": "1"},
            f"SELECT {_COLUMNS} {_PUBLISHED} AND product_type = %s AND platform_serial = %s"
            " AND content_start < %s AND content_end > %s ORDER BY content_start, id LIMIT 1",
            (product_type, unit, t, t + timedelta(hours=1)))
    return make


def _publication_window(rng: random.Random, _: Sample) -> Case:
    t = _instant(rng).replace(second=0)
    end = t + timedelta(minutes=40)
    return Case(
        {"$filter": f"PublicationDate ge {_z(t).replace('.000', '')} and "
                    f"PublicationDate lt {_z(end).replace('.000', '')}",
         "$orderby": "PublicationDate asc", "$top": "500", "$skip": "0"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND publication_date >= %s AND publication_date < %s"
        " ORDER BY publication_date, id LIMIT 500 OFFSET 0", (t, end))


def _unit_and_type(rng: random.Random, _: Sample) -> Case:
    unit, product_type = rng.choice("ABCD"), rng.choice(["AUX_CAL", "AUX_INS", "AUX_PP1",
                                                          "AUX_PP2"])
    return Case(
        {"$filter": f"(startswith(Name,'S1{unit}') or startswith(Name,'S1_')) and "
                    + _attr("productType", product_type),
         "$expand": "Attributes"},
        f"SELECT {_WITH_ATTRIBUTES} {_PUBLISHED} AND product_type = %s"
        " AND platform_serial IN (%s, '') ORDER BY publication_date, id LIMIT 1000",
        (product_type, unit))


def _by_id(rng: random.Random, sample: Sample) -> Case:
    key = rng.choice(sample.ids)
    return Case({}, f"SELECT {_COLUMNS} {_PUBLISHED} AND id = %s", (key,),
                path=f"/Products({key})")


def _by_name(rng: random.Random, sample: Sample) -> Case:
    name = rng.choice(sample.names)
    return Case({"$filter": f"Name eq '{name}'"},
                f"SELECT {_COLUMNS} {_PUBLISHED} AND name = %s", (name,))


def _latest_of_type(rng: random.Random, _: Sample) -> Case:
    unit, product_type = rng.choice("ABCD"), rng.choice(["AUX_CAL", "AUX_INS", "AUX_PP1"])
    return Case(
        {"$filter": f"startswith(Name,'S1{unit}_{product_type}')",
         "$orderby": "PublicationDate desc", "$top": "1"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND product_type = %s AND platform_serial = %s"
        " ORDER BY publication_date DESC, id DESC LIMIT 1", (product_type, unit))


def _count_of_type(rng: random.Random, _: Sample) -> Case:
    product_type = rng.choice(["AUX_POEORB", "MPL_ORBPRE", "AUX_CAL", "AUX_TEC"])
    return Case(
        {"$filter": _attr("productType", product_type), "$count": "true", "$top": "0"},
        f"SELECT count(*) {_PUBLISHED} AND product_type = %s", (product_type,), counts=True)


def _published_since(rng: random.Random, _: Sample) -> Case:
    t = _instant(rng)
    return Case(
        {"$filter": f"PublicationDate gt {_z(t)}", "$orderby": "PublicationDate asc",
         "$top": "100"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND publication_date > %s"
        " ORDER BY publication_date, id LIMIT 100", (t,))


def _type_in_a_day(rng: random.Random, _: Sample) -> Case:
    day = _instant(rng).replace(hour=0, minute=0, second=0)
    return Case(
        {"$filter": _attr("productType", "AUX_RESORB") + f" and ContentDate/Start ge {_z(day)}"
                    f" and ContentDate/Start lt {_z(day + timedelta(days=1))}",
         "$orderby": "ContentDate/Start asc"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND product_type = 'AUX_RESORB'"
        " AND content_start >= %s AND content_start < %s ORDER BY content_start, id LIMIT 1000",
        (day, day + timedelta(days=1)))


def _calibration_in_force(rng: random.Random, _: Sample) -> Case:
    t, unit = _instant(rng), rng.choice("ABCD")
    return Case(
        {"$filter": _attr("productType", "AUX_CAL") + " and "
                    + _attr("platformSerialIdentifier", unit) + " and "
                    "Attributes/OData.CSC.DateTimeOffsetAttribute/any(att:att/Name eq "
                    "'beginningDateTime' and att/OData.CSC.DateTimeOffsetAttribute/Value le "
                    f"{_z(t)})",
         "$orderby": "ContentDate/Start desc", "$top": "1"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND product_type = 'AUX_CAL' AND platform_serial = %s"
        " AND content_start <= %s ORDER BY content_start DESC, id DESC LIMIT 1", (unit, t))


def _names_in(rng: random.Random, sample: Sample) -> Case:
    names = rng.sample(sample.names, 5)
    quoted = ",".join(f"'{n}'" for n in names)
    return Case({"$filter": f"Name in ({quoted})"},
                f"SELECT {_COLUMNS} {_PUBLISHED} AND name = ANY(%s)"
                " ORDER BY publication_date, id", (names,))


def _eof_in_an_hour(rng: random.Random, _: Sample) -> Case:
    t = _instant(rng).replace(minute=0, second=0)
    return Case(
        {"$filter": f"endswith(Name,'.EOF') and PublicationDate ge {_z(t)} and "
                    f"PublicationDate lt {_z(t + timedelta(hours=1))}",
         "$orderby": "PublicationDate asc"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND name LIKE '%%.EOF' AND publication_date >= %s"
        " AND publication_date < %s ORDER BY publication_date, id LIMIT 1000",
        (t, t + timedelta(hours=1)))


def _latest(rng: random.Random, _: Sample) -> Case:
    return Case({"$orderby": "PublicationDate desc", "$top": "20"},
                f"SELECT {_COLUMNS} {_PUBLISHED} ORDER BY publication_date DESC, id DESC"
                " LIMIT 20")


def _third_page(rng: random.Random, _: Sample) -> Case:
    day = _instant(rng).replace(hour=0, minute=0, second=0)
    return Case(
        {"$filter": f"PublicationDate ge {_z(day)} and "
                    f"PublicationDate lt {_z(day + timedelta(days=1))}",
         "$orderby": "PublicationDate asc", "$top": "100", "$skip": "200"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND publication_date >= %s AND publication_date < %s"
        " ORDER BY publication_date, id LIMIT 100 OFFSET 200", (day, day + timedelta(days=1)))


def _cdse_orbit(rng: random.Random, _: Sample) -> Case:
    t = _instant(rng)
    return Case(
        {"$filter": "Collection/Name eq 'SENTINEL-1' and " + _attr("productType", "AUX_POEORB")
                    + f" and ContentDate/Start lt {_z(t)} and ContentDate/End gt {_z(t)}",
         "$orderby": "ContentDate/Start desc", "$top": "1"},
        f"SELECT {_COLUMNS} {_PUBLISHED} AND product_type = 'AUX_POEORB'"
        " AND content_start < %s AND content_end > %s"
        " ORDER BY content_start DESC, id DESC LIMIT 1", (t, t))


SHAPES: dict[str, Callable[[random.Random, Sample], Case]] = {
    "F1 POEORB valid at T (field)": _orbit_at("AUX_POEORB"),
    "F2 published in 40 min (field)": _publication_window,
    "F3 unit or S1_ + productType (field)": _unit_and_type,
    "RESORB valid at T": _orbit_at("AUX_RESORB"),
    "Products(Id)": _by_id,
    "Name eq": _by_name,
    "Name in (5)": _names_in,
    "latest of type+unit (startswith)": _latest_of_type,
    "count of a productType": _count_of_type,
    "poller: published since T, top 100": _published_since,
    "productType + ContentDate day": _type_in_a_day,
    "AUX_CAL in force at T (attributes)": _calibration_in_force,
    "endswith .EOF, published in 1 h": _eof_in_an_hour,
    "latest 20 published": _latest,
    "page 3 of a day (skip 200)": _third_page,
    "CDSE style: Collection + productType": _cdse_orbit,
}


# --- the catalogue and its prip -----------------------------------------------------------


def perf_url(stack: BenchStack) -> str:
    """Where the OData tests keep it: the configured server (tests/odata: 127.0.0.1:5432);
    the stack's own server when that one does not answer (a machine without it)."""
    configured = configured_server(PERF_DATABASE)
    if postgres.reachable(configured):
        return configured
    return conninfo.make_conninfo(stack.settings.database_url, dbname=PERF_DATABASE)


def ensure_seeded(url: str) -> float:
    """Seconds spent seeding (0 when the catalogue was there with the current version)."""
    with connect(conninfo.make_conninfo(url, dbname="postgres"), autocommit=True):
        pass  # the server may be full for a moment: wait for a session slot first
    upgrade(url)  # creates the database on a machine that never ran tests/odata
    with connect(url, autocommit=True) as conn:
        if bulk.is_seeded(conn):
            return 0.0
        print(f"query: seeding {bulk.TOTAL} products into {PERF_DATABASE} (minutes) ...",
              flush=True)
        return bulk.seed(conn)


@dataclass
class PerfPrip:
    url: str  # service root .../odata/v1
    pid: int


def _start_function(stack: BenchStack, name: str, source: Path, target: str, offset: int,
                    path: str, url: str) -> PerfPrip:
    """A function started as the stack starts prip (functions-framework, gunicorn, the
    stack's environment with the 1M-row catalogue's database)."""
    port = stack.port(offset)
    argv = [str(Path(sys.executable).parent / "functions-framework"),
            "--source", str(source), "--target", target,
            "--host", stack.layout.host, "--port", str(port)]
    if not processes.is_alive(stack.state, name):
        processes.require_free_port(port, name)
    pid = processes.start(stack.state, name, argv, cwd=REPO, stop_timeout=5.0,
                          env=stack.env(AUXIP_DATABASE_URL=url))
    root = f"http://{stack.layout.host}:{port}{path}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(root, timeout=2)
            return PerfPrip(root, pid)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} not answering{stack_up.log_tail(stack.state, name)}")


def start_prip(stack: BenchStack, url: str) -> PerfPrip:
    return _start_function(stack, PERF_PRIP, REPO / "functions" / "prip" / "main.py",
                           "handle", PERF_PRIP_OFFSET, "/odata/v1", url)


def start_floor(stack: BenchStack, url: str) -> PerfPrip:
    return _start_function(stack, FLOOR, FLOOR_SOURCE, "handle_http", FLOOR_OFFSET, "/", url)


def sample_products(conn: psycopg.Connection) -> Sample:
    rows = conn.execute("SELECT id::text, name FROM products TABLESAMPLE SYSTEM (0.2)"
                        " WHERE status = 'published' LIMIT 500").fetchall()
    return Sample([r[0] for r in rows], [r[1] for r in rows])


# --- EXPLAIN ------------------------------------------------------------------------------


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plan(conn: psycopg.Connection, statement: object, params: tuple[object, ...]
          ) -> tuple[list[str], bool, float]:
    """(index names, any sequential scan of products, execution ms)."""
    text = statement if isinstance(statement, str) else statement.as_string(conn)  # type: ignore[attr-defined]
    documents = []
    for _ in range(3):  # the best of three: one stall of the shared machine is not the plan
        (result,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text, params,
                                 prepare=False).fetchone()
        documents.append(result[0] if isinstance(result, list) else json.loads(result)[0])
    document = min(documents, key=lambda d: float(d["Execution Time"]))
    nodes = list(_nodes(document["Plan"]))
    indexes = sorted({n["Index Name"] for n in nodes if "Index Name" in n})
    seq = any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "products"
              for n in nodes)
    return indexes, seq, float(document["Execution Time"])


def explain(conn: psycopg.Connection, case: Case) -> tuple[str, str]:
    """The API's plan and the hand-written SQL's, as short texts."""
    if case.path != "/Products":
        api = [(_plan(conn, "SELECT * FROM products WHERE id = %s", case.sql_params))]
    else:
        query = build_products_query(parse_query_options(case.params))
        # `$top=0` with `$count`: fetch_products runs the count alone.
        api = ([_plan(conn, query.select, query.params)]
               if query.top > 0 or query.count is None else [])
        if query.count is not None:
            api.append(_plan(conn, query.count, query.count_params))
    mine = _plan(conn, case.sql, case.sql_params)

    def text(plans: list[tuple[list[str], bool, float]]) -> str:
        names = sorted({i for p in plans for i in p[0]})
        seq = " + Seq Scan" if any(p[1] for p in plans) else ""
        ms = sum(p[2] for p in plans)
        return f"{', '.join(names) or 'no index'}{seq} ({ms:.1f} ms)"

    return text(api), text([mine])


# --- the benchmark ------------------------------------------------------------------------


def _api_ids(case: Case, body: dict) -> list[str]:
    if case.counts:
        return [str(body.get("@odata.count"))]
    if case.path != "/Products":
        return [body["Id"]]
    return [p["Id"] for p in body["value"]]


def _sql_ids(case: Case, rows: list[tuple]) -> list[str]:
    if case.counts:
        return [str(rows[0][0])]
    return [str(r[0]) for r in rows]


def measure(client: httpx.Client, floor: httpx.Client, conn: psycopg.Connection, name: str,
            make: Callable[[random.Random, Sample], Case], sample: Sample, runs: int
            ) -> Samples:
    rng = random.Random(name)
    out = Samples()
    for i in range(WARMUP + runs):
        case = make(rng, sample)
        # Rotate which goes first: a stall of the machine should not favour one side.
        sides = ("api", "sql", "floor")
        order = sides[i % 3:] + sides[:i % 3]
        for side in order:
            began = time.perf_counter()
            if side == "floor":
                # The same request line and headers, to a function that does nothing.
                answer = floor.get("/", params=case.params)
                answer.json()
                if i >= WARMUP:
                    out.floor.append(1000 * (time.perf_counter() - began))
                continue
            if side == "api":
                answer = client.get(case.path, params=case.params)
                took = time.perf_counter() - began
                if answer.status_code != 200:
                    raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:300]}")
                api_body = answer
            else:
                rows = conn.execute(case.sql, case.sql_params, prepare=False).fetchall()
                took = time.perf_counter() - began
            if i >= WARMUP:
                (out.api if side == "api" else out.sql).append(1000 * took)
        if i < WARMUP:
            api, mine = _api_ids(case, api_body.json()), _sql_ids(case, rows)
            if api != mine:
                out.mismatches.append(f"{case.params or case.path}: API {api[:3]}... "
                                      f"({len(api)}) vs SQL {mine[:3]}... ({len(mine)})")
    return out


def run(stack: BenchStack, *, runs: int = RUNS) -> Outcome:
    out = Outcome("query")
    url = perf_url(stack)
    seeded = ensure_seeded(url)
    prip = start_prip(stack, url)
    bare = start_floor(stack, url)
    headers = {"Authorization": f"Bearer {stack.token()}"}
    plans: dict[str, tuple[str, str]] = {}
    floors: list[float] = []
    try:
        with connect(url, autocommit=True) as conn, \
                httpx.Client(base_url=prip.url, headers=headers, timeout=30) as client, \
                httpx.Client(base_url=bare.url, headers=headers, timeout=30) as floor:
            sample = sample_products(conn)
            for name, make in SHAPES.items():
                samples = measure(client, floor, conn, name, make, sample, runs)
                floors += samples.floor
                plans[name] = explain(conn, make(random.Random(f"{name}:plan"), sample))
                a50, a95 = percentile(samples.api, 0.5), percentile(samples.api, 0.95)
                s50, s95 = percentile(samples.sql, 0.5), percentile(samples.sql, 0.95)
                f95 = percentile(samples.floor, 0.95)
                ratio = a95 / (s95 + f95) if s95 + f95 else float("nan")
                note = f"MISMATCH: {samples.mismatches[0]}" if samples.mismatches else ""
                out.figures += [
                    Figure("query", f"{name} p50", a50, "ms", s50, note=note),
                    Figure("query", f"{name} p95", a95, "ms", s95, (
                        at_most(a95, TARGET_MS, "<= 25 ms"),
                        at_most(ratio, TARGET_RATIO, "<= 2x (SQL + floor)",
                                f"{ratio:.1f}x ({a95 / s95:.1f}x SQL alone)")),
                           note=f"floor p95 {f95:.1f} ms"),
                ]
                print(f"query: {name}: API p50 {a50:.1f} p95 {a95:.1f} ms, SQL p50 {s50:.1f} "
                      f"p95 {s95:.1f} ms, floor p95 {f95:.1f} ms ({ratio:.2f}x SQL + floor)"
                      f"{' ' + note if note else ''}", flush=True)
    finally:
        processes.stop(stack.state, PERF_PRIP)
        processes.stop(stack.state, FLOOR)
    out.figures.append(Figure(
        "query", "bare HTTP floor p95 (no-op function)", percentile(floors, 0.95), "ms",
        note=f"p50 {percentile(floors, 0.5):.1f} ms over {len(floors)} requests, in every "
             "query's loop"))
    out.details = [
        f"Catalogue: {bulk.TOTAL:,} products (`tests/odata/bulk.py`, database "
        f"`{PERF_DATABASE}`{f', seeded in {seeded:.0f} s' if seeded else ', already seeded'}"
        f"). {runs} timed requests per query after {WARMUP} warm-ups, fresh literals each; "
        "API (HTTP, one keep-alive connection, bearer token, JSON body read) and SQL "
        "(psycopg, same literals, not prepared, rows fetched) alternate.",
        "The ratio target is API p95 <= 2 x (SQL p95 + bare HTTP floor p95), both measured "
        "in the same query's loop; the floor is a no-op functions-framework HTTP function "
        "(bench/baseline_function) served as the query's prip is (same server and gunicorn "
        "configuration), sent the same request line and headers. Its own row is the p95 "
        "over every loop.",
        "",
        "Index use (EXPLAIN ANALYZE of one draw, best of 3 executions; the API's statement as "
        "`shared.odata.build_products_query` makes it, and the hand-written SQL):",
        "",
        "| query | API plan: indexes (exec) | hand-written SQL: indexes (exec) |",
        "|---|---|---|",
        *[f"| {name} | {api} | {mine} |" for name, (api, mine) in plans.items()],
    ]
    mismatched = [f.name for f in out.figures if f.note.startswith("MISMATCH")]
    if mismatched:
        out.details += ["", "API and SQL answers differed for: " + ", ".join(mismatched)]
    out.data = {"seeded_s": seeded}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    from bench import report

    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        outcome = run(stack, runs=args.runs)
    report.print_outcomes([outcome])


if __name__ == "__main__":
    main()
