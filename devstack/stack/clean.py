"""Forgetting the local stack: the one operation that deletes what it stored.

`down` stops processes and keeps every byte; `clean` stops them and then deletes the
catalogue and the archive together, so that the two never disagree afterwards: the Ceph
cluster (every bucket and object), the catalogue database `up` used (dropped on the
server that served it, or the private cluster's files), the servers' folders kept
outside the state dir, and the state dir itself. Each step is reported as it is done.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import psycopg
from psycopg import conninfo

from devstack.settings import StackSettings, recorded
from devstack.stack import ceph, postgres, processes
from devstack.stack import up as stack


def _where(url: str) -> str:
    info = conninfo.conninfo_to_dict(url)
    return f"{info.get('dbname')} on {info.get('host', 'localhost')}:{info.get('port', 5432)}"


def clean(settings: StackSettings, say: Callable[[str], None]) -> None:
    """Stop and delete the local stack of `settings`, telling `say` what goes."""
    state = settings.state_dir.resolve()
    chosen = recorded(state)
    stopped = stack.down(settings)
    # Stacks kept inside this one (the tests' and the benchmarks' state dirs).
    for run in sorted(state.glob("*/run")) if state.is_dir() else []:
        stopped += processes.stop_all(run.parent)
    if stopped:
        say(f"stopped: {', '.join(stopped)}")
    if ceph.forget(state):
        say(f"deleted the S3 store (every bucket and object): {ceph.folder(state)}")
    url = chosen.get("database_url")
    if url and chosen.get("database") in ("configured", "system"):
        try:
            postgres.drop_database(url)
            say(f"dropped the catalogue database {_where(url)}")
        except (psycopg.Error, postgres.PostgresError) as error:
            say(f"could not drop the catalogue database {_where(url)}: {error}".strip()
                + " (drop it by hand, or `auxip up` finds its products without their bytes)")
    elif url:
        say(f"deleted the catalogue (private PostgreSQL cluster, database {_where(url)})")
    outside = stack.elsewhere(state)
    for folder in (outside, state):
        if folder.exists():
            shutil.rmtree(folder)
            say(f"deleted {folder}")

