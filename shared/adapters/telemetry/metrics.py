"""Prometheus metrics of auxip, and their exposition at `/metrics`.

Names carry the `auxip_` prefix; reasons and outcomes use the codes the rest of auxip uses
(rejection reasons are the README's reason codes). The helpers below are what callers use,
so a metric's labels are spelled in one place.

Exposition: a function process is a functions-framework Flask app, and functions-framework
executes the function's main.py inside that app's context. `instrument.instrumented` (what
`handle` wears) calls `expose(flask.current_app)` at that moment, so every instrumented
function answers `GET /metrics` on its own port, beside its CloudEvent route, with no
second server or port (Knative routes one port per Service). With several gunicorn
workers (WORKERS > 1), set PROMETHEUS_MULTIPROC_DIR: the page then sums every worker's
samples through prometheus_client's multiprocess collector.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

ROUTE = "/metrics"

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# Arrival -> publication: seconds when all is well, hours when a stage is down.
_TIMELINESS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                       43200, 86400, 172800)

INVOCATIONS = Counter("auxip_invocations_total", "Function invocations, by outcome (ok|error).",
                      ["function", "outcome"])
STAGE_SECONDS = Histogram("auxip_stage_duration_seconds",
                          "Time a function takes to handle one event (or HTTP request).",
                          ["function"], buckets=_LATENCY_BUCKETS)
FILES_ARRIVED = Counter("auxip_files_arrived_total",
                        "Objects the inbox adapter announced as file.arrived (new ones).")
FILES_IN = Counter("auxip_files_in_total",
                   "file.arrived events ingest handled, by outcome (ingested, duplicate,"
                   " rejected, pending, gone, ignored).", ["outcome"])
FILES_OUT = Counter("auxip_files_out_total", "Products published, by product type.",
                    ["product_type"])
REJECTIONS = Counter("auxip_rejections_total", "Files quarantined, by reason code.", ["reason"])
TIMELINESS = Histogram("auxip_timeliness_seconds",
                       "KPI timeliness: publication date minus origin (arrival) date.",
                       ["product_type"], buckets=_TIMELINESS_BUCKETS)
TRANSFERS = Counter("auxip_transfers_total", "Transfers to route targets, by outcome.",
                    ["route", "outcome"])
TRANSFER_SECONDS = Histogram("auxip_transfer_duration_seconds", "Duration of one transfer.",
                             ["route"], buckets=_LATENCY_BUCKETS)
TRANSFER_BYTES = Counter("auxip_transfer_bytes_total", "Bytes sent to route targets.", ["route"])
DOWNLOADS = Counter("auxip_downloads_total", "Product downloads ($value), by outcome.",
                    ["outcome"])
DOWNLOAD_BYTES = Counter("auxip_download_bytes_total", "Bytes served by product downloads.")
ARCHIVE_DISAGREEMENTS = Counter(
    "auxip_archive_disagreements_total",
    "Catalogue and archive disagreeing: a product's object missing or not its catalogued size"
    " or checksum, or an archive object no product claims; by who found it (download,"
    " verify) and kind (missing, size, checksum, orphan).", ["found_by", "kind"])
DEAD_LETTERS = Counter("auxip_dead_letters_total",
                       "Events the broker gave up delivering, by event type.", ["type"])


def invoked(function: str, outcome: str, seconds: float) -> None:
    INVOCATIONS.labels(function, outcome).inc()
    STAGE_SECONDS.labels(function).observe(seconds)


def files_arrived(count: int) -> None:
    FILES_ARRIVED.inc(count)


def file_ingested(outcome: str) -> None:
    FILES_IN.labels(outcome).inc()


def rejected(reason: str) -> None:
    REJECTIONS.labels(reason).inc()


def published(product_type: str, timeliness_s: float) -> None:
    FILES_OUT.labels(product_type).inc()
    TIMELINESS.labels(product_type).observe(max(0.0, timeliness_s))


def transferred(route: str, outcome: str, seconds: float, nbytes: int = 0) -> None:
    TRANSFERS.labels(route, outcome).inc()
    TRANSFER_SECONDS.labels(route).observe(seconds)
    if nbytes:
        TRANSFER_BYTES.labels(route).inc(nbytes)


def downloaded(outcome: str, nbytes: int = 0) -> None:
    DOWNLOADS.labels(outcome).inc()
    if nbytes:
        DOWNLOAD_BYTES.inc(nbytes)


def archive_disagreement(found_by: str, kind: str, count: int = 1) -> None:
    ARCHIVE_DISAGREEMENTS.labels(found_by, kind).inc(count)


def dead_lettered(event_type: str) -> None:
    DEAD_LETTERS.labels(event_type).inc()


def _known_label_values(function: str) -> list[tuple[Counter | Histogram, list[tuple[str, ...]]]]:
    """The series `function` records whose label values are known before any event."""
    # Imported here: these modules record metrics themselves (import cycle at module level).
    if function == "ingest":
        from events.files import RejectReason

        # ingest publishes the products it packages itself (shared.pipeline.ingestion).
        return [(REJECTIONS, [(r.value,) for r in RejectReason]), *_published_series()]
    if function == "publish":
        return _published_series()
    if function == "deadletter":
        from events.registry import DATA_MODELS

        return [(DEAD_LETTERS, [(t,) for t in DATA_MODELS])]
    if function == "prip":
        return [(ARCHIVE_DISAGREEMENTS, [("download", "missing"), ("download", "size")])]
    if function == "verify":
        return [(ARCHIVE_DISAGREEMENTS, [("verify", kind) for kind in
                                         ("missing", "size", "checksum", "orphan")])]
    return []


def _published_series() -> list[tuple[Counter | Histogram, list[tuple[str, ...]]]]:
    from shared.core.naming import DEFAULT_TYPES

    return [(FILES_OUT, [(t,) for t in DEFAULT_TYPES]),
            (TIMELINESS, [(t,) for t in DEFAULT_TYPES])]


def initialise(function: str) -> None:
    """Create at zero the series `function` records whose label values are known before any
    event: from its start its page shows `0 rejected` rather than nothing (an operator cannot
    tell nothing from a broken scrape), and `increase()` counts the first events too (a
    series that appears at 3 shows no increase)."""
    for outcome in ("ok", "error"):
        INVOCATIONS.labels(function, outcome)
    STAGE_SECONDS.labels(function)
    for counter, label_values in _known_label_values(function):
        for values in label_values:
            counter.labels(*values)


def outcomes_known(outcomes: Iterable[str]) -> None:
    """The ingest step's outcomes at zero (the step names them: shared.pipeline.ingestion)."""
    for outcome in outcomes:
        FILES_IN.labels(outcome)


def route_known(route: str) -> None:
    """A route's transfer series at zero (routes live in the catalogue: the route function
    names them at each sweep)."""
    for outcome in ("completed", "failed"):
        TRANSFERS.labels(route, outcome)
    TRANSFER_SECONDS.labels(route)
    TRANSFER_BYTES.labels(route)


def registry() -> CollectorRegistry:
    """What `/metrics` shows: this process, or every worker's (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY


def page() -> tuple[bytes, str]:
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def expose(app: flask.Flask) -> None:
    """Answer `GET /metrics` on `app` (once per app). A static rule wins over the
    functions-framework catch-all `/<path:path>`, so the function's own routes are intact."""
    if any(rule.rule == ROUTE for rule in app.url_map.iter_rules()):
        return

    def metrics_page() -> flask.Response:
        body, content_type = page()
        return flask.Response(body, mimetype=None, content_type=content_type)

    app.add_url_rule(ROUTE, endpoint="auxip_metrics", view_func=metrics_page, methods=["GET"])


def sample_names() -> set[str]:
    """Every sample name auxip's metrics can expose (`_total`, `_bucket`, ...), whether or not
    a sample was recorded yet: what a dashboard's queries may name."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                                 "_created"),
                "gauge": ("",), "summary": ("_sum", "_count", "_created")}
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("auxip_"):
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


EVICTIONS = Counter("auxip_products_evicted_total",
                    "Products taken offline past their EvictionDate, by product type.",
                    ["product_type"])


def evicted(product_type: str) -> None:
    EVICTIONS.labels(product_type).inc()
