"""Bringing a product's bytes back where the scrub found them missing or damaged, from
where they came, never as a second product:

1. the distribution object (a SAFE product's `.SAFE.zip`, a zipped EOF) is packaged again
   from the ingested copy when that one is intact: packaging is deterministic, and the
   result replaces nothing unless it is the catalogued MD5;
2. else the items the product was polled as are fetched again from their routing source
   into the inbox (`shared.pipeline.routing.polling.refetch`), where ingest finds the product
   catalogued with the same content and restores its objects (`restore_from_arrival`);
3. else an operator uploads the same file into the inbox again, with the same effect.

Meanwhile a product whose served object is gone can be taken offline (`mark_offline`:
$value answers 410 instead of 503); it comes back online when its bytes do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from botocore.exceptions import ClientError

from shared.adapters.catalogue import integrity, products
from shared.adapters.runtime import Runtime
from shared.pipeline.integrity.scrub import Finding, Report

log = logging.getLogger(__name__)

REPACKAGED = "repackaged"
REFETCHED = "refetched"
UPLOAD_AGAIN = "upload again"
LEFT = "left as it is"


@dataclass(frozen=True)
class Repair:
    product_id: UUID
    name: str
    action: str  # repackaged | refetched | upload again | left as it is
    detail: str
    offline: bool = False  # taken offline by this repair (mark_offline)


def repair(rt: Runtime, report: Report, environ: Mapping[str, str], *,
           bring_back: bool = True, mark_offline: bool = False) -> list[Repair]:
    """One repair per damaged product of `report` (orphans are left to an operator):
    its bytes brought back (`bring_back`), and/or taken offline meanwhile."""
    done = []
    for product_id, findings in report.damaged_products().items():
        with rt.pool.connection() as conn:
            row = products.get(conn, product_id)
        if row is None or row["status"] == "evicted":
            continue
        if bring_back:
            outcome = _repair(rt, row, findings, environ)
        else:
            outcome = Repair(row["id"], row["name"] or row["logical_name"], LEFT, "")
        offline = False
        if mark_offline and outcome.action != REPACKAGED and any(f.served for f in findings):
            with rt.pool.connection() as conn:
                offline = integrity.mark_offline(conn, product_id)
            if offline:
                log.warning("%s taken offline: its bytes are not in the archive", outcome.name)
        done.append(Repair(outcome.product_id, outcome.name, outcome.action, outcome.detail,
                           offline))
    return done


def _repair(rt: Runtime, row: dict, findings: list[Finding],
            environ: Mapping[str, str]) -> Repair:
    # Here, not at import: packaging (its archive readers and writers, the outbox and
    # httpx) is ~8% of the instructions of verify's import (~0.02 s of CPU), and only a
    # damaged product needs it.
    from shared.pipeline import packaging

    name = row["name"] or row["logical_name"]
    copy_intact = not any(not f.served for f in findings)
    if copy_intact and row["distribution_key"] and row["distribution_key"] != row["archive_key"]:
        try:
            packaging.rebuild(rt, row)
        except (packaging.RebuildError, ClientError) as error:
            log.warning("%s: not packaged again: %s", name, error)
        else:
            with rt.pool.connection() as conn:
                integrity.mark_online(conn, row["id"])
            log.info("%s: distribution object packaged again from its ingested copy", name)
            return Repair(row["id"], name, REPACKAGED, row["distribution_key"])
    # Here, not at import: the routing machinery (its YAML configuration, sources) is
    # ~1.8 MB of verify's resident memory, and only a product to fetch again needs it.
    from shared.pipeline.routing import polling

    names = [row["logical_name"], row["name"], f"{row['logical_name']}.zip"]
    fetched = polling.refetch(rt, [n for n in names if n], environ)
    good = [f for f in fetched if f.error is None]
    if good and len(good) == len(fetched):
        sources = ", ".join(sorted({f.source for f in good}))
        return Repair(row["id"], name, REFETCHED,
                      f"{len(good)} item(s) fetched again from {sources}: ingest restores it")
    why = "; ".join(f"{f.source}: {f.error}" for f in fetched if f.error)
    return Repair(row["id"], name, UPLOAD_AGAIN,
                  f"upload {row['logical_name']} into the inbox again: the same bytes restore"
                  f" it{f' (its source could not: {why})' if why else ''}")

