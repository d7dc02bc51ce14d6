"""`auxip kafka put | notify | lag`: the inbox's Kafka leg, as MinIO's Kafka target feeds it
in production (bucket notification records on the KafkaSource's topic, read by the
router's KafkaSource locally and by Knative's in a cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from devstack import inbox_kafka
from devstack.settings import StackSettings, stack_settings
from shared.adapters import storage

app = typer.Typer(no_args_is_help=True, help="The inbox's Kafka leg: write MinIO-format "
                  "notifications to the KafkaSource's topic; see how far it has read.")
console = Console()


@app.command()
def put(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="files to upload into the inbox"),
) -> None:
    """Upload files into the inbox bucket and write MinIO's notification of each to the
    topic (what a MinIO inbox with a Kafka target does on each PUT)."""
    s = stack_settings()
    s3 = storage.client(s)
    for path in files:
        storage.put_file(s3, s.inbox_bucket, path.name, path)
    _announce(s, s3, [path.name for path in files])


@app.command()
def notify(keys: list[str] = typer.Argument(..., help="object keys already in the inbox")) -> None:
    """Write MinIO's notification of objects already in the inbox bucket to the topic."""
    s = stack_settings()
    _announce(s, storage.client(s), keys)


@app.command()
def lag() -> None:
    """The KafkaSource's consumer group: committed offset and what is left, per partition."""
    s = stack_settings()
    try:
        source = inbox_kafka.kafka_source(s)
        servers = inbox_kafka.bootstrap_servers(s)
        rows = inbox_kafka.progress(servers, source.consumer_group, source.topics)
    except inbox_kafka.KafkaUnavailable as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    table = Table("topic", "partition", "end offset", "committed", "lag",
                  title=f"group {source.consumer_group} at {servers}")
    for row in rows:
        table.add_row(row.topic, str(row.partition), str(row.end),
                      "-" if row.committed is None else str(row.committed), str(row.lag))
    console.print(table)
    if not rows:
        console.print(f"no topic {', '.join(source.topics)} yet: the first record creates it")


def _announce(s: StackSettings, s3: Any, keys: list[str]) -> None:
    try:
        partitions = inbox_kafka.announce(s, s3, s.inbox_bucket, keys)
        topic = inbox_kafka.kafka_source(s).topics[0]
    except (inbox_kafka.KafkaUnavailable, FileNotFoundError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    for key, partition in zip(keys, partitions, strict=True):
        console.print(f"s3://{s.inbox_bucket}/{key} -> {topic} partition {partition}",
                      highlight=False, soft_wrap=True)
