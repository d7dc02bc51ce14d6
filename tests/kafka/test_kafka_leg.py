"""MinIO -> Kafka -> KafkaSource -> inbox-adapter -> ... -> published, on the local stack:
files PUT into the inbox, MinIO's record of each written to the topic, the router's
KafkaSource delivering them. Nothing consumed is lost or published twice: through a burst,
a consumer killed mid-stream, and a broker restart (where the local memory-only broker
forgets what was not consumed, and the reconcile sweep announces those files)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack import inbox_kafka
from devstack.stack import kafka, processes
from devstack.stack import up as stack_up
from devstack.stack.up import StackInfo
from shared.adapters import runtime, storage
from shared.pipeline.ingestion.reconcile import reconcile_inbox
from tests.reliability import end_state, faults, orbits

pytestmark = pytest.mark.e2e


def put_and_announce(info: StackInfo, files: Sequence[orbits.Orbit]) -> list[int]:
    """PUT each file into the inbox, then write MinIO's record of each to the topic (in
    upload order, as MinIO does); returns each record's partition."""
    s = info.settings
    client = storage.client(s)
    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(lambda f: storage.put_bytes(client, s.inbox_bucket, *f), files))
    records = [inbox_kafka.minio_record(s.inbox_bucket, name, size=len(body), etag=etag)
               for (name, body), etag in zip(files, etags, strict=True)]
    return inbox_kafka.produce(inbox_kafka.bootstrap_servers(s), topic(info), records)


def topic(info: StackInfo) -> str:
    return inbox_kafka.kafka_source(info.settings).topics[0]


def assert_all_committed(info: StackInfo, timeout_s: float = 30.0) -> None:
    """The KafkaSource's group has committed every record written (its lag is 0)."""
    s = info.settings
    source = inbox_kafka.kafka_source(s)
    servers = inbox_kafka.bootstrap_servers(s)
    end_state.wait_until(
        "every record committed",
        lambda: all(p.lag == 0 for p in inbox_kafka.progress(servers, source.consumer_group,
                                                              source.topics)),
        timeout_s, report=lambda: inbox_kafka.progress(servers, source.consumer_group,
                                                       source.topics))


class KafkaDeliveries:
    """The router's log of KafkaSource deliveries from now on (it appends across restarts):
    how often each record reached inbox-adapter."""

    def __init__(self, info: StackInfo) -> None:
        self.log = processes.log_path(info.settings.state_dir, stack_up.ROUTER)
        self.start = self.log.stat().st_size if self.log.exists() else 0

    def counts(self) -> Counter[str]:
        with self.log.open("rb") as stream:
            stream.seek(self.start)
            lines = stream.read().decode(errors="replace").splitlines()
        counts: Counter[str] = Counter()
        for line in lines:
            if '"kafkasource"' not in line or '"msg": "delivered"' not in line:
                continue
            entry = json.loads(line)
            counts[f"{entry['partition']}/{entry['offset']}"] += 1
        return counts


def test_a_burst_of_200_minio_records_publishes_each_file_once(fresh: StackInfo) -> None:
    s = fresh.settings
    files = orbits.batch(200, epoch=50)
    names = [name for name, _ in files]
    deliveries = KafkaDeliveries(fresh)
    began = time.monotonic()
    put_and_announce(fresh, files)
    took = end_state.settle(fresh, names, timeout_s=240)
    print(f"\n200 files via Kafka: published {took:.1f} s after the last record, "
          f"{time.monotonic() - began:.1f} s in all")
    end_state.assert_published_exactly_once(s, names)
    end_state.assert_nothing_orphaned(s)
    # Each one announced by its Kafka record through inbox-adapter (no webhook, no sweep).
    arrived = end_state.query(s, "SELECT source FROM event_journal WHERE type ="
                                 " 'org.auxip.file.arrived.v1' AND subject = ANY(%s)", names)
    assert Counter(r["source"] for r in arrived) == {f"{s.event_source}/inbox-adapter": 200}
    assert_all_committed(fresh)
    assert sum(deliveries.counts().values()) >= 200


def test_the_consumer_killed_mid_stream_loses_nothing_and_publishes_nothing_twice(
    fresh: StackInfo,
) -> None:
    s = fresh.settings
    state = s.state_dir
    files = orbits.batch(120, epoch=51)
    names = [name for name, _ in files]
    deliveries = KafkaDeliveries(fresh)
    put_and_announce(fresh, files)
    end_state.wait_until("a third of the records delivered",
                         lambda: sum(deliveries.counts().values()) >= 40, 120, every_s=0.05)
    faults.crash(state, stack_up.ROUTER)  # SIGKILL: no commit, no goodbye to the group
    delivered_before = len(deliveries.counts())
    stack_up.up(s)
    took = end_state.settle(fresh, names, timeout_s=240)
    counts = deliveries.counts()
    twice = sum(1 for n in counts.values() if n > 1)
    print(f"\nkilled after {delivered_before} of 120 records; all published {took:.1f} s"
          f" after the restart; {twice} record(s) delivered again (not committed yet)")
    assert delivered_before < 120
    assert len(counts) == 120  # every record reached inbox-adapter
    end_state.assert_published_exactly_once(s, names)
    end_state.assert_nothing_orphaned(s)
    assert_all_committed(fresh)


def test_a_broker_restart_forgets_unconsumed_records_and_the_sweep_announces_their_files(
    fresh: StackInfo,
) -> None:
    """The local broker keeps records in memory only (production's Kafka is durable): what
    it held unconsumed when it restarted is gone. The stack recovers (the consumer rejoins,
    new records flow) and the inbox reconcile sweep announces the forgotten files."""
    s = fresh.settings
    state = s.state_dir
    lost = orbits.batch(10, epoch=52)
    later = orbits.batch(10, epoch=53)
    after_second = orbits.batch(10, epoch=54)
    # Unconsumed: the router (the KafkaSource's only member) is down while they are written.
    processes.stop(state, stack_up.ROUTER)
    put_and_announce(fresh, lost)
    processes.stop(state, kafka.NAME)
    stack_up.up(s)  # a fresh broker, then the router
    assert all(p.end == 0 for p in inbox_kafka.progress(
        inbox_kafka.bootstrap_servers(s), "probe", [topic(fresh)]))  # the records are gone

    put_and_announce(fresh, later)  # the consumer rejoined the new broker's group
    end_state.wait_until("records after the restart published",
                         lambda: end_state.published_count(s, [n for n, _ in later]) == 10, 120)

    # A restart under a running consumer: it loses its partitions and rejoins the new
    # broker's group (when that happens before a record made the topic again, the group has
    # nothing to give it, and it rejoins once the topic is there), then reads on.
    processes.stop(state, kafka.NAME)
    stack_up.up(s)
    put_and_announce(fresh, after_second)
    end_state.wait_until(
        "records after the second restart published",
        lambda: end_state.published_count(s, [n for n, _ in after_second]) == 10, 180)

    lost_names = [name for name, _ in lost]
    assert end_state.published_count(s, lost_names) == 0  # the memory store's limit
    rt = runtime.build(s)
    try:
        # What the ingest sweep (PingSource, every minute) does once they are
        # AUXIP_INBOX_RECONCILE_AGE_S old.
        assert sorted(reconcile_inbox(rt, min_age_s=0)) == sorted(lost_names)
    finally:
        rt.close()
    names = [name for name, _ in lost + later + after_second]
    end_state.settle(fresh, names, timeout_s=120)
    end_state.assert_published_exactly_once(s, names)
    end_state.assert_nothing_orphaned(s)
    assert_all_committed(fresh)


def test_auxip_kafka_put_publishes_the_file(fresh: StackInfo, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """By hand: `auxip kafka put FILE` (upload + MinIO's record) publishes the product."""
    from typer.testing import CliRunner

    from shared.operations.cli.main import app

    name, body = orbits.batch(1, epoch=55)[0]
    (tmp_path / name).write_bytes(body)
    for key, value in stack_up.env(fresh.settings).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["kafka", "put", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    assert f"{fresh.settings.inbox_bucket}/{name} -> {topic(fresh)}" in result.output
    end_state.settle(fresh, [name], timeout_s=60)
    end_state.assert_published_exactly_once(fresh.settings, [name])
    lag = CliRunner().invoke(app, ["kafka", "lag"])
    assert lag.exit_code == 0 and "auxip-inbox-adapter" in lag.output
