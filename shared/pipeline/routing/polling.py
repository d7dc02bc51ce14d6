"""The poll step: each enabled source is listed, and every file not fetched before is copied
into the inbox and announced with `file.arrived` (origin `poll:<source>`), so the normal
path (ingest, package, publish) takes it from there.

Guarantees:
- A file is copied to a temporary file first (unlinked at once: a crash leaves nothing),
  its size and MD5 checked against what the source announced, then PUT into the inbox
  with Content-MD5, so the inbox verifies the bytes it stores as well.
- The `seen_sources` row, the `file.arrived` journal row and the source's state (the OData
  window) are committed in one transaction after the copy. A crash before that commit
  fetches the file again on the next run (same inbox key, same event id: ingest sees one
  product); a crash after it is mended by the outbox. Nothing is lost, nothing doubled.
- One poller per source at a time (a session advisory lock: released by PostgreSQL when
  a crashed poller's connection goes).
- A file that fails (source error, checksum mismatch) is counted in the state and tried
  again next run; for OData it holds the window back, until it failed `max_failures`
  times: then it is reported in `failures` and no longer holds the window.
"""

from __future__ import annotations

import base64
import logging
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from events import envelope, types
from events.files import FileArrived
from shared.adapters import outbox, storage
from shared.adapters.catalogue import sources as sources_table
from shared.adapters.runtime import Runtime
from shared.core.checksums import Checksums, Digest
from shared.core.s1time import format_odata, parse_iso
from shared.pipeline.routing import config
from shared.pipeline.routing.sources import Item, Source, SourceError, open_source

log = logging.getLogger(__name__)

_IDS = uuid.UUID("c1d0a7e2-3b4f-4e8a-9d61-5a2f0b7c8e13")
# PingSource ticks drift by a second or so: a source due every minute is not skipped for it.
_TICK_SLACK_S = 5.0
SINGLE_PUT_LIMIT = 5 * 1024**3  # S3 refuses one PUT above 5 GiB


@dataclass(frozen=True)
class PollResult:
    source: str
    status: str  # polled | error | busy | not_due | disabled | unknown
    fetched: int = 0
    skipped: int = 0
    failed: int = 0
    detail: str = ""


class Mismatch(Exception):
    """The bytes read are not what the source announced."""


def poll_all(rt: Runtime, environ: Mapping[str, str], *, only: list[str] | None = None,
             force: bool = False) -> list[PollResult]:
    """Poll every enabled source that is due (or those named in `only`)."""
    with rt.pool.connection() as conn:
        names = only if only is not None else sources_table.enabled_names(conn)
    return [poll(rt, name, environ, force=force) for name in names]


def poll(rt: Runtime, name: str, environ: Mapping[str, str], *, force: bool = False
         ) -> PollResult:
    with rt.pool.connection() as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                              (f"poll:{name}",)).fetchone()
        if not (locked and locked[0]):
            return PollResult(name, "busy", detail="another poller has this source")
        try:
            return _poll_locked(rt, conn, name, environ, force)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                         (f"poll:{name}",))


def _poll_locked(rt: Runtime, conn: psycopg.Connection, name: str,
                 environ: Mapping[str, str], force: bool) -> PollResult:
    row = sources_table.get(conn, name)
    if row is None:
        return PollResult(name, "unknown", detail="no such source")
    if not row["enabled"]:
        return PollResult(name, "disabled")
    state: dict[str, Any] = dict(row["state"] or {})
    now = datetime.now(UTC)
    try:
        source_config = config.source_from_row(row)
    except config.ConfigError as error:
        return _stopped(conn, name, state, now, str(error))
    if not force and not _due(state, source_config.interval_s, now):
        return PollResult(name, "not_due")
    try:
        source = open_source(source_config, rt.settings, environ)
    except config.ConfigError as error:
        return _stopped(conn, name, state, now, str(error))
    run = _Run(rt, conn, source_config, source, state)
    try:
        run.run()
    except SourceError as error:
        run.error = str(error)
    except (BotoCoreError, ClientError) as error:
        run.error = f"inbox {rt.settings.inbox_bucket}: {error}"
    except Exception as error:  # a listing that failed in a library's own way
        log.exception("poll %s", name)
        run.error = f"{type(error).__name__}: {error}"
    finally:
        source.close()
    state["last_run"] = format_odata(now)
    state["last_error"] = run.error
    state["last_counts"] = {"fetched": run.fetched, "skipped": run.skipped,
                            "failed": run.failed}
    with conn.transaction():
        sources_table.save_state(conn, name, state)
    if run.error:
        log.warning("poll %s: %s", name, run.error)
    return PollResult(name, "error" if run.error else "polled", run.fetched, run.skipped,
                      run.failed, run.error or "")


def _stopped(conn: psycopg.Connection, name: str, state: dict[str, Any], now: datetime,
             error: str) -> PollResult:
    state.update(last_run=format_odata(now), last_error=error)
    with conn.transaction():
        sources_table.save_state(conn, name, state)
    log.warning("poll %s: %s", name, error)
    return PollResult(name, "error", detail=error)


def _due(state: Mapping[str, Any], interval_s: float, now: datetime) -> bool:
    last = state.get("last_run")
    if not last:
        return True
    return (now - parse_iso(last)).total_seconds() >= interval_s - _TICK_SLACK_S


class _Run:
    """One pass over one source."""

    def __init__(self, rt: Runtime, conn: psycopg.Connection, source_config: Any,
                 source: Source, state: dict[str, Any]) -> None:
        self.rt = rt
        self.conn = conn
        self.config = source_config
        self.source = source
        self.state = state
        self.failures: dict[str, dict[str, Any]] = dict(state.get("failures") or {})
        self.blocked = False  # an earlier item failed: the window stays before it
        self.fetched = self.skipped = self.failed = 0
        self.error: str | None = None

    def run(self) -> None:
        name = self.config.name
        for page in self.source.pages(dict(self.state)):
            known = sources_table.seen(self.conn, name, [item.key for item in page])
            for item in page:
                if item.key in known and known[item.key] == item.version:
                    self.skipped += 1
                    self._advance(item)
                    self._remove_at_source(item)
                    continue
                if self.fetched + self.failed >= self.config.max_per_run:
                    return  # the rest next run: the window is where this one stopped
                self._fetch(item)

    def _fetch(self, item: Item) -> None:
        name = self.config.name
        key = self.config.inbox_root() + item.name
        try:
            checksums = self._copy(item, key)
        except (SourceError, Mismatch) as error:
            self._failed(item, str(error))
            return
        now = datetime.now(UTC)
        event = envelope.build(
            types.FILE_ARRIVED,
            FileArrived(bucket=self.rt.settings.inbox_bucket, key=key, size=checksums.size,
                        etag=checksums.md5, origin=f"poll:{name}", arrived_at=now),
            source=f"{self.rt.settings.event_source}/poll", subject=item.product_name,
            event_id=str(uuid.uuid5(_IDS, f"arrived:{name}:{item.key}:{item.version}")),
        )
        self.failures.pop(item.key, None)
        with self.conn.transaction():
            sources_table.mark_seen(self.conn, name, item.key, version=item.version,
                                    product_name=item.product_name, inbox_key=key,
                                    size=checksums.size, event_id=event["id"])
            outbox.record(self.conn, event)
            self._advance(item)
            sources_table.save_state(self.conn, name, self._state())
        outbox.send(self.conn, self.rt.settings.broker_url, [event["id"]])
        self.fetched += 1
        log.info("poll %s: %s -> %s/%s (%d bytes)", name, item.key,
                 self.rt.settings.inbox_bucket, key, checksums.size)
        self._remove_at_source(item)

    def _copy(self, item: Item, key: str) -> Checksums:
        with tempfile.TemporaryFile(prefix="auxip-poll-") as spool:
            digest = Digest()
            try:
                with self.source.open(item) as chunks:
                    for chunk in chunks:
                        digest.update(chunk)
                        spool.write(chunk)
            except SourceError:
                raise
            except Exception as error:  # a source's library failing mid-read (SSH, sockets)
                raise SourceError(f"{item.name}: {type(error).__name__}: {error}") from error
            got = digest.result()
            if item.size is not None and got.size != item.size:
                raise Mismatch(f"{item.name}: {got.size} bytes read, the source announced "
                               f"{item.size}")
            if item.md5 and got.md5 != item.md5.lower():
                raise Mismatch(f"{item.name}: MD5 {got.md5}, the source announced {item.md5}")
            spool.seek(0)
            _to_inbox(self.rt, key, spool, got, self.config.name)
        return got

    def _failed(self, item: Item, error: str) -> None:
        entry = self.failures.get(item.key, {"count": 0})
        count = int(entry.get("count", 0)) + 1
        self.failures[item.key] = {"name": item.name, "count": count, "error": error[:500],
                                   "at": format_odata(datetime.now(UTC))}
        self.failed += 1
        if count < self.config.max_failures:
            self.blocked = True
            log.warning("poll %s: %s failed (%d of %d): %s", self.config.name, item.name,
                        count, self.config.max_failures, error)
        else:
            log.error("poll %s: %s failed %d times, no longer retried: %s",
                      self.config.name, item.name, count, error)
        with self.conn.transaction():
            sources_table.save_state(self.conn, self.config.name, self._state())

    def _advance(self, item: Item) -> None:
        if item.published is None or self.blocked:
            return
        since = self.state.get("since")
        if since is None or parse_iso(since) < item.published:
            self.state["since"] = format_odata(item.published)

    def _state(self) -> dict[str, Any]:
        # Failures given up on stay listed (operators read them), without holding anything.
        self.state["failures"] = self.failures
        return self.state

    def _remove_at_source(self, item: Item) -> None:
        if getattr(self.config, "delete_after_fetch", False):
            try:
                self.source.remove(item)
            except (OSError, SourceError) as error:
                log.warning("poll %s: %s fetched but not removed at the source: %s",
                            self.config.name, item.key, error)


def _to_inbox(rt: Runtime, key: str, spool: IO[bytes], checksums: Checksums,
              source: str) -> None:
    s = rt.settings
    metadata = {"auxip-source": source, "auxip-md5": checksums.md5}
    if checksums.size <= SINGLE_PUT_LIMIT:
        # Content-MD5: the S3 server refuses the PUT if what it received differs.
        rt.s3.put_object(Bucket=s.inbox_bucket, Key=key, Body=spool,
                         ContentLength=checksums.size, Metadata=metadata,
                         ContentMD5=base64.b64encode(bytes.fromhex(checksums.md5)).decode())
        return
    storage.put_stream(rt.s3, s.inbox_bucket, key, spool, Metadata=metadata)
    stored = storage.head(rt.s3, s.inbox_bucket, key)
    if stored is None or stored["size"] != checksums.size:
        raise Mismatch(f"{key}: the inbox holds {stored and stored['size']} bytes, "
                       f"{checksums.size} were sent")


@dataclass(frozen=True)
class Refetched:
    source: str
    item_key: str
    inbox_key: str
    error: str | None = None  # why this item could not be fetched again


def refetch(rt: Runtime, product_names: list[str], environ: Mapping[str, str]
            ) -> list[Refetched]:
    """Fetch again the items a product was polled as (`product_names`: its arrival names)
    from the sources that delivered them, into the same inbox keys, checked as a poll
    checks them, each announced by a new `file.arrived`: ingest then finds the product
    catalogued with the same content and restores its archive objects (never a second
    product). An item its source no longer has is reported with the error."""
    done: list[Refetched] = []
    with rt.pool.connection() as conn:
        items = sources_table.items_of(conn, product_names)
        for source_name in dict.fromkeys(r["source"] for r in items):
            mine = [r for r in items if r["source"] == source_name]
            row = sources_table.get(conn, source_name)
            if row is None:
                done += [Refetched(source_name, r["item_key"], r["inbox_key"],
                                   "the source is no longer configured") for r in mine]
                continue
            try:
                source_config = config.source_from_row(row)
                source = open_source(source_config, rt.settings, environ)
            except config.ConfigError as error:
                done += [Refetched(source_name, r["item_key"], r["inbox_key"], str(error))
                         for r in mine]
                continue
            run = _Run(rt, conn, source_config, source, dict(row["state"] or {}))
            try:
                done += [_refetch_item(run, r) for r in mine]
            finally:
                source.close()
    return done


def _refetch_item(run: _Run, seen: Mapping[str, Any]) -> Refetched:
    rt, name = run.rt, run.config.name
    inbox_key = seen["inbox_key"]
    item = Item(key=seen["item_key"], name=inbox_key.rsplit("/", 1)[-1], size=seen["size"],
                version=seen["checksum"] or "")
    try:
        checksums = run._copy(item, inbox_key)
    except (SourceError, Mismatch, BotoCoreError, ClientError) as error:
        log.warning("refetch %s from %s: %s", seen["item_key"], name, error)
        return Refetched(name, seen["item_key"], inbox_key, str(error)[:500])
    now = datetime.now(UTC)
    event = envelope.build(
        types.FILE_ARRIVED,
        FileArrived(bucket=rt.settings.inbox_bucket, key=inbox_key, size=checksums.size,
                    etag=checksums.md5, origin=f"poll:{name}", arrived_at=now),
        source=f"{rt.settings.event_source}/poll", subject=seen["product_name"],
        event_id=str(uuid.uuid5(_IDS, f"refetched:{name}:{item.key}:{now.isoformat()}")),
    )
    with run.conn.transaction():
        outbox.record(run.conn, event)
    outbox.send(run.conn, rt.settings.broker_url, [event["id"]])
    log.info("refetched %s from %s into %s/%s (%d bytes)", item.key, name,
             rt.settings.inbox_bucket, inbox_key, checksums.size)
    return Refetched(name, item.key, inbox_key)
