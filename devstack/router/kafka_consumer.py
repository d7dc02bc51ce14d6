"""A KafkaSource's consumer-group member: read records, deliver each to the sink, commit
the offsets of records done with.

What Knative's KafkaSource dispatcher does (eventing-kafka-broker's data plane):
- at least once: a record is done when its sink took it, or after the retries the
  dead-letter sink did (or, here, it was kept as a failed delivery: kafka_delivery.py);
  offsets are committed only up to the first record not done (OffsetTracker), every
  `router_kafka_commit_interval_s`, when partitions are revoked and when the consumer stops.
  A member killed before committing leaves those records to be delivered again.
- `ordering: ordered` (the default): one record at a time per partition, in offset order;
  `unordered`: all the partition's records at once, still committed in order.
- the group, topics and initial offset (for a group with no committed offset) of the
  manifest; `consumers` members per source.
A partition with more than MAX_WAITING records waiting for delivery is paused until half
of them are done, so a slow sink holds back the reads, not the memory.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from devstack.router import logs
from devstack.router.kafka_delivery import Outcome, Post, deliver
from devstack.router.kafka_source import KafkaSource, Record, event_of
from devstack.router.store import Store

MAX_WAITING = 500
POLL_S = 0.1
ERROR_LOG_EVERY_S = 60.0
# A member the group gave no partition, checked this often for topics that appeared since.
EMPTY_CHECK_S = 5.0


class OffsetTracker:
    """The offsets of one partition read and not yet committed; the offset to commit is the
    one after the longest run of done records from the first read (gaps in the log, such as
    transaction markers, are never read and so never hold it back)."""

    def __init__(self) -> None:
        self._read: collections.deque[int] = collections.deque()
        self._done: set[int] = set()
        self.position: int | None = None  # offset to commit: the next one not done
        self.committed: int | None = None

    def read(self, offset: int) -> None:
        self._read.append(offset)

    def done(self, offset: int) -> None:
        self._done.add(offset)
        while self._read and self._read[0] in self._done:
            first = self._read.popleft()
            self._done.discard(first)
            self.position = first + 1

    def to_commit(self) -> int | None:
        if self.position is None or self.position == self.committed:
            return None
        return self.position


@dataclass(eq=False)
class _Lane:
    """A partition as this member holds it between two rebalances."""

    topic: str
    partition: int
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    waiting: collections.deque[Record] = field(default_factory=collections.deque)
    busy: int = 0  # records being delivered
    paused: bool = False

    @property
    def partition_key(self) -> tuple[str, int]:
        return self.topic, self.partition


class KafkaSourceMember:
    def __init__(self, source: KafkaSource, bootstrap_servers: str, post: Post, store: Store, *,
                 member: str, workers: int, session_timeout_ms: int, commit_interval_s: float,
                 stop_grace_s: float = 10.0) -> None:
        self.source = source
        self.post = post
        self.store = store
        self.member = member
        self.commit_interval_s = commit_interval_s
        self.stop_grace_s = stop_grace_s
        self.config = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": source.consumer_group,
            "client.id": f"auxip-router-{member}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": source.initial_offset,
            "isolation.level": "read_committed",
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(100, session_timeout_ms // 4),
            # A topic made after the subscription (a broker that restarted empty, a first
            # produce) is seen this soon.
            "topic.metadata.refresh.interval.ms": 2000,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self._client_error,
            "log_level": 0,  # client errors come through error_cb, once a minute each
        }
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._work, name=f"kafka-{member}-worker-{i}",
                                          daemon=True) for i in range(max(1, workers))]
        self._thread = threading.Thread(target=self._run, name=f"kafka-{member}", daemon=True)
        self._logged: dict[str, float] = {}
        self._given_nothing = False  # the last assignment was empty

    # -- control ----------------------------------------------------------------------------

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._thread.start()

    def stop(self) -> None:
        """Finish what is being delivered (up to stop_grace_s), commit, leave the group."""
        self._stopping.set()
        self._thread.join(timeout=self.stop_grace_s + 10.0)
        for _ in self._workers:
            self._tasks.put(None)

    # -- the consumer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except Exception:
                # A client that failed for good (a fatal error, a bad setting): a new one,
                # from the committed offsets, rather than a source that silently stops.
                logs.exception("kafka source consumer failed; a new one in 5 s",
                               kafkasource=self.source.key, member=self.member)
                self._forget(set(self._lanes), "dropped")
                self._stopping.wait(5.0)

    def _consume(self) -> None:
        consumer = Consumer(self.config)
        try:
            consumer.subscribe(list(self.source.topics), on_assign=self._assigned,
                               on_revoke=self._revoked, on_lost=self._lost)
            logs.info("kafka source consuming", kafkasource=self.source.key,
                      member=self.member, topics=list(self.source.topics),
                      group=self.source.consumer_group,
                      bootstrap=self.config["bootstrap.servers"])
            last_commit = last_check = 0.0
            while not self._stopping.is_set():
                if self._given_nothing and time.monotonic() - last_check >= EMPTY_CHECK_S:
                    last_check = time.monotonic()
                    if self._topics_have_partitions_for_all(consumer):
                        return  # _run makes a new member, which the group gives partitions
                for message in consumer.consume(num_messages=200, timeout=POLL_S):
                    self._take(message)
                self._flow(consumer)
                if (self._wake.is_set()
                        and time.monotonic() - last_commit >= self.commit_interval_s):
                    self._wake.clear()
                    last_commit = time.monotonic()
                    self._commit(consumer, self._current())
            self._drain()
            self._commit(consumer, self._current())
        finally:
            consumer.close()  # leaves the group: the others take the partitions at once
            logs.info("kafka source stopped", kafkasource=self.source.key, member=self.member)

    def _topics_have_partitions_for_all(self, consumer: Consumer) -> bool:
        """A group that rebalanced while its topics did not exist (a broker that restarted
        empty) gives its members nothing, and a topic made afterwards does not always make it
        rebalance again: rejoin when the topics have a partition for every member."""
        try:
            metadata = consumer.list_topics(timeout=2.0)
        except Exception:  # KafkaException: the broker is away; check again later
            return False
        partitions = sum(len(metadata.topics[topic].partitions) for topic in self.source.topics
                         if topic in metadata.topics and not metadata.topics[topic].error)
        if partitions < self.source.consumers:
            return False
        logs.warning("given no partition of topics that have some: rejoining the group",
                     kafkasource=self.source.key, member=self.member, partitions=partitions)
        self._given_nothing = False
        return True

    def _current(self) -> list[_Lane]:
        with self._lock:
            return list(self._lanes.values())

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                self._client_error(error)
            return
        record = Record(
            topic=message.topic(), partition=message.partition(), offset=message.offset(),
            timestamp_ms=message.timestamp()[1] if message.timestamp()[0] else None,
            key=message.key(), value=message.value(), headers=tuple(message.headers() or ()),
        )
        with self._lock:
            lane = self._lanes.get((record.topic, record.partition))
            if lane is None:
                lane = self._lanes[(record.topic, record.partition)] = _Lane(
                    record.topic, record.partition)
            lane.tracker.read(record.offset)
            if self.source.ordered:
                lane.waiting.append(record)
                if lane.busy == 0:
                    lane.busy = 1
                    self._tasks.put(lambda lane=lane: self._drain_lane(lane))
            else:
                lane.busy += 1
                self._tasks.put(lambda lane=lane, record=record: self._one(lane, record))

    def _flow(self, consumer: Consumer) -> None:
        with self._lock:
            pause = [lane for lane in self._lanes.values()
                     if not lane.paused and len(lane.waiting) + lane.busy > MAX_WAITING]
            resume = [lane for lane in self._lanes.values()
                      if lane.paused and len(lane.waiting) + lane.busy <= MAX_WAITING // 2]
            for lane in pause:
                lane.paused = True
            for lane in resume:
                lane.paused = False
        if pause:
            consumer.pause([TopicPartition(lane.topic, lane.partition) for lane in pause])
        if resume:
            consumer.resume([TopicPartition(lane.topic, lane.partition) for lane in resume])

    def _commit(self, consumer: Consumer, lanes: list[_Lane]) -> None:
        with self._lock:
            due = [(lane, lane.tracker.to_commit()) for lane in lanes]
        offsets = [(lane, offset) for lane, offset in due if offset is not None]
        if not offsets:
            return
        try:
            consumer.commit(offsets=[TopicPartition(lane.topic, lane.partition, offset)
                                     for lane, offset in offsets], asynchronous=False)
        except Exception as error:  # KafkaException: the next commit carries these offsets
            logs.warning("commit failed", kafkasource=self.source.key, error=str(error))
            return
        with self._lock:
            for lane, offset in offsets:
                lane.tracker.committed = offset
        logs.info("offsets committed", kafkasource=self.source.key, member=self.member,
                  offsets={f"{lane.topic}/{lane.partition}": offset for lane, offset in offsets})

    def _drain(self) -> None:
        """Stopping: wait for the deliveries under way (waiting records are left)."""
        with self._lock:
            for lane in self._lanes.values():
                lane.waiting.clear()
        deadline = time.monotonic() + self.stop_grace_s
        while time.monotonic() < deadline:
            with self._lock:
                if not any(lane.busy for lane in self._lanes.values()):
                    return
            time.sleep(0.05)

    # -- rebalances (called by the client inside consume) -----------------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._given_nothing = not partitions
        logs.info("partitions assigned", kafkasource=self.source.key, member=self.member,
                  partitions=[f"{p.topic}/{p.partition}" for p in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        with self._lock:
            lanes = [lane for key, lane in self._lanes.items() if key in revoked]
        self._commit(consumer, lanes)
        self._forget(revoked, "revoked")

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may own them already: committing now could move its offsets back.
        self._forget({(p.topic, p.partition) for p in partitions}, "lost")

    def _forget(self, partitions: set[tuple[str, int]], why: str) -> None:
        with self._lock:
            for key in partitions:
                lane = self._lanes.pop(key, None)
                if lane is not None:
                    lane.waiting.clear()  # records in delivery finish; their outcome is dropped
        logs.info(f"partitions {why}", kafkasource=self.source.key, member=self.member,
                  partitions=[f"{t}/{p}" for t, p in sorted(partitions)])

    def _client_error(self, error: KafkaError) -> None:
        text = error.str()
        now = time.monotonic()
        if now - self._logged.get(text, -ERROR_LOG_EVERY_S) < ERROR_LOG_EVERY_S:
            return
        self._logged[text] = now
        fields = {"kafkasource": self.source.key, "member": self.member, "error": text,
                  "code": error.name()}
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            logs.info("topic not there yet: the first record written makes it", **fields)
        else:
            logs.warning("kafka client", **fields)

    # -- workers ----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                task()
            except Exception:
                logs.exception("kafka delivery failed inside the router",
                               kafkasource=self.source.key)

    def _drain_lane(self, lane: _Lane) -> None:
        """Ordered: this lane's records one after the other until none waits."""
        while True:
            with self._lock:
                if not lane.waiting or self._stopping.is_set():
                    lane.busy = 0
                    return
                record = lane.waiting.popleft()
            if not self._deliver(lane, record):
                with self._lock:
                    lane.busy = 0
                return

    def _one(self, lane: _Lane, record: Record) -> None:
        try:
            self._deliver(lane, record)
        finally:
            with self._lock:
                lane.busy -= 1

    def _deliver(self, lane: _Lane, record: Record) -> bool:
        """Deliver one record; False when it was abandoned (the member stops)."""
        event = event_of(self.source, record)
        fields = {"kafkasource": self.source.key, "topic": record.topic,
                  "partition": record.partition, "offset": record.offset,
                  "event_id": event.id, "type": event.type}
        outcome = deliver(event, self.source.subscription, self.post, self.store,
                          self._stopping, fields)
        if outcome is Outcome.ABANDONED:
            return False
        with self._lock:
            # A lane revoked meanwhile is no longer in _lanes: its new owner reads it again.
            if self._lanes.get(lane.partition_key) is lane:
                lane.tracker.done(record.offset)
        self._wake.set()
        return True
