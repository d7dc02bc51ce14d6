"""`python -m devstack.router`: run the local event router.

    python -m devstack.router            serve on Layout(AUXIP_PORT_BASE).router_port
    python -m devstack.router --check    validate the manifests, print triggers and subscribers
    python -m devstack.router --failed   list deliveries that ended failed or dead-lettered
    python -m devstack.router --redeliver ID [ID ...]
                                       send those deliveries to their subscriber again
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime

import psycopg

from devstack.layout import Layout
from devstack.router import logs, manifests
from devstack.router.server import RouterServer, load_topology
from devstack.router.settings import RouterSettings
from devstack.router.store import Store, new_instance, open_pool
from devstack.router.topology import Delivery, DeliverySpec, Topology


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="validate the manifests and exit")
    parser.add_argument("--failed", action="store_true", help="list failed and dead-lettered deliveries")
    parser.add_argument("--limit", type=int, default=100, help="rows for --failed")
    parser.add_argument("--redeliver", type=int, nargs="+", metavar="ID", help="delivery ids to send again")
    args = parser.parse_args(argv)
    settings = RouterSettings()
    logs.configure()
    if args.failed or args.redeliver:
        return operate(settings, args)
    try:
        topology = load_topology(settings)
    except manifests.ManifestError as error:
        print(f"manifest error: {error}", file=sys.stderr)
        return 2
    if args.check:
        print_topology(topology, settings)
        return 0
    return serve(settings, topology)


def serve(settings: RouterSettings, topology: Topology) -> int:
    router = RouterServer(settings, topology)
    stopping = threading.Event()

    def request_stop(_signal: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        router.start()
    except (OSError, psycopg.Error) as error:
        print(f"router could not start on port {router.port} with {settings.database_url}: {error}",
              file=sys.stderr)
        return 1
    stopping.wait()
    router.stop()
    return 0


def print_topology(topology: Topology, settings: RouterSettings) -> None:
    print(f"manifests: {settings.manifests_dir()} ({len(topology.files)} files)")
    for broker in topology.brokers.values():
        default = " (default: POST /)" if topology.default_broker() is broker else ""
        print(f"broker {broker.key}{default}")
        if broker.delivery:
            print(f"  delivery: {_delivery_text(broker.delivery)}")
    for trigger in topology.triggers.values():
        delivery = trigger.subscription.delivery
        print(f"trigger {trigger.key} (broker {trigger.broker}, {trigger.file})")
        print(f"  filter: {trigger.filter_text}")
        print(f"  subscriber: {trigger.subscription.destination.description} -> {trigger.subscription.url}")
        print(f"  delivery: {_delivery_text(delivery)}")
    now = datetime.now(UTC)
    for source in topology.ping_sources:
        print(f"pingsource {source.key} ({source.file})")
        print(f"  schedule: {source.schedule.text!r} ({source.schedule.zone.key}), next {source.schedule.next_after(now).isoformat()}")
        print(f"  sink: {source.sink.description} -> {source.sink.url}")
    local = settings.kafka_bootstrap_servers or Layout(settings.port_base).kafka_bootstrap
    for kafka in topology.kafka_sources:
        print(f"kafkasource {kafka.key} ({kafka.file})")
        print(f"  topics: {', '.join(kafka.topics)}; group {kafka.consumer_group}; "
              f"initialOffset {kafka.initial_offset}; "
              f"{'ordered' if kafka.ordered else 'unordered'}; {kafka.consumers} consumer(s)")
        print(f"  bootstrapServers: {', '.join(kafka.bootstrap_servers)} -> {local}")
        subscription = kafka.subscription
        print(f"  sink: {subscription.destination.description} -> {subscription.url}")
        print(f"  delivery: {_delivery_text(subscription.delivery)}")


def _delivery_text(delivery: Delivery | DeliverySpec) -> str:
    parts = [
        f"retry={delivery.retry}",
        f"backoff={delivery.backoff_policy}",
        f"delay={delivery.backoff_delay}s" if delivery.backoff_delay is not None else "delay=unset",
        f"timeout={delivery.timeout}s" if delivery.timeout is not None else "timeout=unset",
    ]
    sink = delivery.dead_letter
    parts.append(f"deadLetterSink={sink.description} -> {sink.url}" if sink else "deadLetterSink=none")
    return ", ".join(parts)


def operate(settings: RouterSettings, args: argparse.Namespace) -> int:
    pool = open_pool(settings.database_url, new_instance(), 2)
    try:
        store = Store(pool, "cli")
        if args.redeliver:
            count = store.redeliver(args.redeliver)
            print(f"{count} of {len(args.redeliver)} deliveries queued again")
            return 0 if count == len(args.redeliver) else 1
        for row in store.deliveries(["failed", "dead"], args.limit):
            print(json.dumps(row, default=str))
        return 0
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
