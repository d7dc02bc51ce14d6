"""Download benchmark: a 512 MiB product through `Products(<Id>)/$value` against a direct
S3 GET of the same object, with the prip process's memory sampled during the download.

The object goes straight into the archive bucket and its row straight into the catalogue
(published, online): pushing 512 MiB through ingest would measure clamd and MD5, not the
download. The direct GET uses a presigned URL of the object, so that both sides run the
same client code (urllib3, which boto3 uses underneath, 1 MiB reads, bytes thrown away):
only the server path differs. httpx as the client was measured at about half urllib3's
rate on this machine, which would have made the client the bottleneck. They alternate,
five downloads each, and the medians are compared. A flat RSS while 512 MiB pass
through means prip streams; a delta near 512 MiB would mean it buffers. The CPU prip's
processes spend per download is measured too: on a loaded machine it says more than the
rate, which follows the machine's stalls.

The presigned-redirect mode (AUXIP_DOWNLOAD_REDIRECT=true: `$value` answers 307 to a
presigned URL of the archive object) is measured on a second prip started as the stack's,
with that setting: the client follows the redirect, so the figure is the redirect's round
trip plus a direct GET.

The stack's prip relays a large body from the S3 connection to the client's by splice(2)
(shared.adapters.zero_copy); a third prip with AUXIP_DOWNLOAD_ZERO_COPY=false (1 MiB
chunks through its memory, the path of a TLS connection) is measured alongside, for its
CPU per download: the ratio of the two, taken in the same run, is what the relay saves.

    python -m bench.download [--mib N] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import urllib3

from bench import procs
from bench.figures import Figure, Outcome, at_least, median
from bench.stack import CHUNKS_PRIP_OFFSET, REDIRECT_PRIP_OFFSET, REPO, BenchStack, bench_stack
from devstack.stack import processes
from devstack.stack import up as stack_up
from shared.adapters import storage

MiB = 1024**2
SIZE_MIB = 512
REPEATS = 5
CHUNK = MiB
TARGET_RATIO = 0.95
REDIRECT_PRIP = "prip-redirect"
CHUNKS_PRIP = "prip-chunks"
KEY = "bench/S1A_AUX_SCS_V20400101T000000_G20400101T000000.SAFE.zip"
NAME = KEY.removeprefix("bench/")
SAMPLE_S = 0.01


@dataclass
class RssSampler:
    """Samples the resident memory of a process tree in a thread (every SAMPLE_S)."""

    pid: int
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _rss(self) -> int:
        return sum(procs.rss_bytes(p) for p in procs.tree(self.pid))

    def __enter__(self) -> RssSampler:
        self.samples.append(self._rss())
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.samples.append(self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(self._rss())

    @property
    def start(self) -> int:
        return self.samples[0]

    @property
    def max_delta(self) -> int:
        return max(self.samples) - self.start


def _body(size: int) -> tuple[bytes, str]:
    """A 1 MiB random block repeated: nothing on the way compresses or deduplicates."""
    block = os.urandom(MiB)
    digest = hashlib.md5(usedforsecurity=False)
    for _ in range(size // MiB):
        digest.update(block)
    return block, digest.hexdigest()


def stage_product(stack: BenchStack, size_mib: int) -> str:
    """Put the object and its catalogue row; returns the product Id."""
    size = size_mib * MiB
    block, md5 = _body(size)
    path = stack.state / "bench-download.bin"
    with open(path, "wb") as out:
        for _ in range(size_mib):
            out.write(block)
    try:
        storage.put_file(storage.client(stack.settings), stack.settings.archive_bucket, KEY,
                         path, content_type="application/zip")
    finally:
        path.unlink(missing_ok=True)
    product_id = uuid.uuid5(uuid.NAMESPACE_URL, f"auxip-bench/{KEY}/{size}")
    now = datetime.now(UTC)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM products WHERE id = %s OR name = %s", (product_id, NAME))
        conn.execute(
            "INSERT INTO products (id, logical_name, name, status, product_type,"
            " platform_serial, fingerprint, layout, archive_key, distribution_key, content_type,"
            " content_length, checksums, content_start, content_end, origin_date,"
            " publication_date, online)"
            " VALUES (%s, %s, %s, 'published', 'AUX_SCS', 'A', %s, 'safe-archive', %s, %s,"
            " 'application/zip', %s, %s, %s, %s, %s, %s, true)",
            (product_id, NAME.removesuffix(".zip"), NAME, md5, KEY, KEY, size,
             json.dumps([{"Algorithm": "MD5", "Value": md5,
                          "ChecksumDate": now.isoformat()}]), now, now, now, now))
    return str(product_id)


_HTTP = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=120), retries=False)


def _get(url: str, headers: dict[str, str], *, follow: bool = False) -> tuple[float, int]:
    """(seconds, bytes) of one GET read in 1 MiB chunks, the bytes thrown away; `follow`:
    one redirect is followed (without the Authorization header: the URL is signed)."""
    began = time.perf_counter()
    answer = _HTTP.request("GET", url, headers=headers, preload_content=False)
    if follow:
        if answer.status != 307:
            raise RuntimeError(f"GET {url[:80]} answered {answer.status}, not a redirect")
        location = answer.headers["Location"]
        answer.drain_conn()
        answer.release_conn()
        answer = _HTTP.request("GET", location, preload_content=False)
    try:
        if answer.status != 200:
            raise RuntimeError(f"GET {url[:80]} answered {answer.status}: {answer.read(300)!r}")
        got = 0
        for chunk in answer.stream(CHUNK, decode_content=False):
            got += len(chunk)
    finally:
        answer.release_conn()
    return time.perf_counter() - began, got


def direct_get(stack: BenchStack) -> tuple[float, int]:
    """A GET of the archive object straight from RGW (presigned: signed in the URL)."""
    url = storage.client(stack.settings).generate_presigned_url(
        "get_object", Params={"Bucket": stack.settings.archive_bucket, "Key": KEY},
        ExpiresIn=600)
    return _get(url, {})


def api_get(stack: BenchStack, product_id: str, root: str | None = None, pid: int | None = None
            ) -> tuple[float, int, RssSampler, float]:
    """(seconds, bytes, RSS samples of prip, prip's CPU seconds) of `$value` with a
    reader's token; the stack's prip unless `root` (its service root) and `pid` are given."""
    url = f"{root or stack.url('prip') + '/odata/v1'}/Products({product_id})/$value"
    headers = {"Authorization": f"Bearer {stack.token()}"}
    pid = pid or stack.pid("prip")
    cpu = procs.tree_cpu_seconds(pid)
    with RssSampler(pid) as rss:
        took, got = _get(url, headers)
    return took, got, rss, procs.tree_cpu_seconds(pid) - cpu


def start_prip(stack: BenchStack, name: str, offset: int, **env: str) -> str:
    """Another prip, started as the stack's with `env` on top; its service root."""
    port = stack.port(offset)
    argv = [str(Path(sys.executable).parent / "functions-framework"),
            "--source", str(REPO / "functions" / "prip" / "main.py"), "--target", "handle",
            "--host", stack.layout.host, "--port", str(port)]
    if not processes.is_alive(stack.state, name):
        processes.require_free_port(port, name)
    processes.start(stack.state, name, argv, cwd=REPO, stop_timeout=5.0,
                    env=stack.env(**env))
    root = f"http://{stack.layout.host}:{port}/odata/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _HTTP.request("GET", root, retries=False)
            return root
        except urllib3.exceptions.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} not answering{stack_up.log_tail(stack.state, name)}")


def redirected_get(stack: BenchStack, root: str, product_id: str) -> tuple[float, int]:
    return _get(f"{root}/Products({product_id})/$value",
                {"Authorization": f"Bearer {stack.token()}"}, follow=True)


def run(stack: BenchStack, *, size_mib: int = SIZE_MIB) -> Outcome:
    out = Outcome("download")
    size = size_mib * MiB
    began = time.perf_counter()
    product_id = stage_product(stack, size_mib)
    print(f"download: {size_mib} MiB product staged in {time.perf_counter() - began:.1f} s",
          flush=True)
    api_get(stack, product_id)  # warm-up: token check, pools, first S3 connection
    redirecting = start_prip(stack, REDIRECT_PRIP, REDIRECT_PRIP_OFFSET,
                             AUXIP_DOWNLOAD_REDIRECT="true")
    chunking = start_prip(stack, CHUNKS_PRIP, CHUNKS_PRIP_OFFSET,
                          AUXIP_DOWNLOAD_ZERO_COPY="false")
    chunking_pid = stack.pid(CHUNKS_PRIP)
    direct: list[float] = []
    api: list[float] = []
    redirected: list[float] = []
    cpu: list[float] = []
    chunks_cpu: list[float] = []
    deltas: list[int] = []
    start_rss = 0
    try:
        redirected_get(stack, redirecting, product_id)  # warm-up of the other prips
        api_get(stack, product_id, chunking, chunking_pid)
        for _ in range(REPEATS):
            took, got = direct_get(stack)
            if got != size:
                raise RuntimeError(f"direct GET returned {got} bytes of {size}")
            direct.append(size / MiB / took)
            took, got, rss, spent = api_get(stack, product_id)
            if got != size:
                raise RuntimeError(f"$value returned {got} bytes of {size}")
            api.append(size / MiB / took)
            cpu.append(spent)
            deltas.append(rss.max_delta)
            start_rss = rss.start
            took, got = redirected_get(stack, redirecting, product_id)
            if got != size:
                raise RuntimeError(f"redirected $value returned {got} bytes of {size}")
            redirected.append(size / MiB / took)
            _, got, _, spent_chunks = api_get(stack, product_id, chunking, chunking_pid)
            if got != size:
                raise RuntimeError(f"$value in chunks returned {got} bytes of {size}")
            chunks_cpu.append(spent_chunks)
            print(f"download: direct {direct[-1]:.0f} MiB/s, $value {api[-1]:.0f} MiB/s "
                  f"(prip CPU {spent * 1000:.0f} ms; in 1 MiB chunks "
                  f"{spent_chunks * 1000:.0f} ms), redirect {redirected[-1]:.0f} MiB/s, "
                  f"prip RSS +{rss.max_delta / MiB:.1f} MiB over {len(rss.samples)} samples",
                  flush=True)
    finally:
        processes.stop(stack.state, REDIRECT_PRIP)
        processes.stop(stack.state, CHUNKS_PRIP)
    storage.delete(storage.client(stack.settings), stack.settings.archive_bucket, KEY)
    rate, base = median(api), median(direct)
    ratio = rate / base
    moved = median(redirected)
    out.figures += [
        Figure("download", f"$value throughput, {size_mib} MiB", rate, "MiB/s", base,
               (at_least(ratio, TARGET_RATIO, ">= 0.95 x direct GET", f"{ratio:.2f} x"),),
               note=f"median of {REPEATS}; baseline: direct (presigned) GET from RGW"),
        Figure("download", f"$value redirected (307 + presigned GET), {size_mib} MiB", moved,
               "MiB/s", base, note=f"{moved / base:.2f} x direct; median of {REPEATS}"),
        Figure("download", f"prip CPU per $value of {size_mib} MiB", median(cpu) * 1000, "ms",
               median(chunks_cpu) * 1000,
               note="median; master + worker, user + system; baseline: the same in 1 MiB "
                    "chunks (AUXIP_DOWNLOAD_ZERO_COPY=false)"),
        Figure("download", "prip RSS max delta during $value", max(deltas) / MiB, "MiB",
               start_rss / MiB, note="baseline: prip RSS before the download"),
    ]
    out.details = [
        f"{size_mib} MiB object (random 1 MiB block repeated) in the archive bucket, row "
        f"inserted published/online. {REPEATS} downloads each way, alternating, after one "
        "warm-up `$value`; one client for both (urllib3, 1 MiB reads, discarded); the direct "
        "GET uses a presigned URL of the archive object.",
        f"Direct GET MiB/s: {', '.join(f'{v:.0f}' for v in direct)}; `$value` MiB/s: "
        f"{', '.join(f'{v:.0f}' for v in api)}; redirected `$value` MiB/s: "
        f"{', '.join(f'{v:.0f}' for v in redirected)}; prip CPU ms per `$value`: "
        f"{', '.join(f'{v * 1000:.0f}' for v in cpu)}; in 1 MiB chunks (a prip with "
        f"AUXIP_DOWNLOAD_ZERO_COPY=false): {', '.join(f'{v * 1000:.0f}' for v in chunks_cpu)}.",
        f"prip (gunicorn master + worker) RSS before: {start_rss / MiB:.0f} MiB; max delta "
        f"per download: {', '.join(f'{d / MiB:.1f}' for d in deltas)} MiB (sampled every "
        f"{SAMPLE_S * 1000:.0f} ms): flat, so `$value` streams.",
    ]
    if max(deltas) > 64 * MiB:
        out.details[-1] = out.details[-1].replace("flat, so `$value` streams.",
                                                  "NOT flat: `$value` holds the bytes.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=SIZE_MIB)
    parser.add_argument("--reuse", action="store_true", help="keep a running bench stack")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack up")
    args = parser.parse_args()
    from bench import report

    with bench_stack(reuse=args.reuse, keep=args.keep) as stack:
        outcome = run(stack, size_mib=args.mib)
    report.print_outcomes([outcome])


if __name__ == "__main__":
    main()
