"""The log writer process, as a function's process uses it: JSON lines on the process's
own stderr (a real descriptor here, as under gunicorn), formatted by a child process.
Each case is a real Python process (the SCRIPTS below) so its stderr, its exit and its
death are real: no line lost at a normal exit, no writer left behind by a killed parent,
a writer that dies started again once and then replaced by this process's own thread, a
forked worker with a writer of its own, the security events' file reopened when moved."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.adapters.telemetry.ecs_lines import check

REPO = Path(__file__).parents[3]

SET_UP = """
import logging, os, sys, time
from shared.adapters.telemetry import logging as ecs_logs
ecs_logs.configure("probe")
log = logging.getLogger("auxip.probe")
def writer_pid():
    ecs_logs.flush_all()
    return ecs_logs.writer().process.pid
"""


def _run(body: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SET_UP + body], cwd=REPO, timeout=timeout,
                          capture_output=True, text=True, check=False)


def _lines(stderr: str) -> list[dict]:
    return [check(line) for line in stderr.splitlines() if line.startswith("{")]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def test_every_line_reaches_stderr_through_the_writer_process_by_a_normal_exit() -> None:
    done = _run("""
with ecs_logs.bound(event_id="e-1", product="S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"):
    for i in range(5000):
        log.info("line %d", i)
print(writer_pid(), os.getpid())
for i in range(5000, 20000):
    log.info("line %d", i)
""")
    assert done.returncode == 0, done.stderr[-2000:]
    writer, parent = (int(word) for word in done.stdout.split())
    assert writer != parent
    lines = _lines(done.stderr)
    assert [line["message"] for line in lines] == [f"line {i}" for i in range(20000)]
    assert {line["process"]["pid"] for line in lines} == {parent}  # the logger's, not the writer's
    assert lines[0]["event"]["id"] == "e-1" and "event" not in lines[-1]
    assert not _alive(writer)


def test_a_killed_process_leaves_no_writer_behind() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SET_UP + """
log.warning("before")
print(writer_pid(), flush=True)
time.sleep(600)
"""], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        writer = int(process.stdout.readline())  # type: ignore[union-attr]
        assert _alive(writer)
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    deadline = time.monotonic() + 10
    while _alive(writer):
        assert time.monotonic() < deadline, "the writer process outlived its parent"
        time.sleep(0.05)
    assert [line["message"] for line in _lines(stderr)] == ["before"]


def test_a_writer_that_dies_is_started_again_once_then_this_process_writes() -> None:
    done = _run("""
import signal
log.warning("one")
first = writer_pid()
os.kill(first, signal.SIGKILL)
time.sleep(0.5)
log.warning("two")
second = writer_pid()
os.kill(second, signal.SIGKILL)
time.sleep(0.5)
log.warning("three")
log.warning("four")
ecs_logs.flush_all()
print(first, second, ecs_logs.writer().process, ecs_logs.writer().in_process)
""")
    assert done.returncode == 0, done.stderr[-2000:]
    first, second, process, in_process = done.stdout.split()
    assert first != second and (process, in_process) == ("None", "True")
    assert [line["message"] for line in _lines(done.stderr)] == ["one", "two", "three", "four"]
    said = [line for line in done.stderr.splitlines() if line.startswith("auxip logging:")]
    assert len(said) == 2 and "starting another" in said[0] and "this process" in said[1]


def test_a_forked_worker_gets_a_writer_of_its_own() -> None:
    done = _run("""
log.warning("master")
master_writer = writer_pid()
child = os.fork()
if child == 0:
    log.warning("worker")
    print("worker", os.getpid(), writer_pid(), flush=True)
    sys.exit(0)
os.waitpid(child, 0)
log.warning("master again")
print("master", os.getpid(), writer_pid(), flush=True)
""")
    assert done.returncode == 0, done.stderr[-2000:]
    found = {words[0]: (int(words[1]), int(words[2]))
             for words in (line.split() for line in done.stdout.splitlines())}
    (worker, worker_writer), (master, master_writer) = found["worker"], found["master"]
    assert worker_writer != master_writer
    by_message = {line["message"]: line["process"]["pid"] for line in _lines(done.stderr)}
    assert by_message == {"master": master, "worker": worker, "master again": master}


def test_the_security_events_file_is_written_by_the_writer_and_reopened_when_moved(
        tmp_path: Path) -> None:
    path = tmp_path / "security.jsonl"
    done = _run(f"""
from shared.adapters.telemetry import security_events
security_events.configure("probe", "file:{path}")
security_events.emit("auxip.token.refused", "authentication", "failure", reason="expired",
                     user="mallory", source_ip="192.0.2.7")
ecs_logs.flush_all()
os.rename("{path}", "{path}.1")  # logrotate
security_events.emit("auxip.role.denied", "iam", "failure", user="alice")
print(writer_pid())
""")
    assert done.returncode == 0, done.stderr[-2000:]
    [rotated] = [check(line) for line in Path(f"{path}.1").read_text().splitlines()]
    [current] = [check(line) for line in path.read_text().splitlines()]
    assert rotated["event"]["action"] == "auxip.token.refused"
    assert rotated["source"]["ip"] == "192.0.2.7" and rotated["service"]["name"] == "probe"
    assert current["event"]["action"] == "auxip.role.denied"
    assert not _lines(done.stderr)  # not with the logs


def test_a_line_the_writer_process_writes_is_the_line_this_process_would_write(
        tmp_path: Path) -> None:
    """Both paths, the same document: the writer process's line and the in-process
    formatter's (a stream with no descriptor) for the same records."""
    done = _run(f"""
import io
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
here = io.StringIO()
with open("{tmp_path / 'out.jsonl'}", "a") as there:
    handlers = [ecs_logs.configure("probe", stream=there)]
    handlers.append(ecs_logs.channel("probe", "json", here))
    log.addHandler(handlers[1])
    with trace.get_tracer("t").start_as_current_span("s"), ecs_logs.bound(
            event_id="e-2", event_type="org.auxip.file.arrived", subject="in/x", product="P"):
        log.info("plain %s", "args", extra={{"event.action": "auxip.probe"}})
        try:
            raise ValueError("broken")
        except ValueError:
            log.exception("failed")
    ecs_logs.flush_all()
print(here.getvalue(), end="")
""")
    assert done.returncode == 0, done.stderr[-2000:]
    there = [check(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    here = [check(line) for line in done.stdout.splitlines()]
    assert len(there) == 2 and there == here
    plain, failed = there
    assert plain["trace"]["id"] and plain["span"]["id"] and plain["event"]["id"] == "e-2"
    assert plain["auxip"] == {"event_type": "org.auxip.file.arrived", "subject": "in/x",
                              "product": "P"}
    assert plain["event"]["action"] == "auxip.probe" and plain["message"] == "plain args"
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "broken"
    assert failed["error"]["stack_trace"].startswith('  File "<string>", line ')
    assert json.dumps(plain).count("auxip_") == 0  # the carried context is not a field
