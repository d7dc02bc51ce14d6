"""Lines that skip logging's record (queued_logger) are the lines logging's own path
writes, byte for byte but the time; every line something else could see takes that path.

Each case is a real Python process (pytest's own handlers on the root logger would turn
the short path off): it logs each line twice through the same logger, once by the short
path and once by logging's own (a pass-through filter on the logger forces it), and counts
the records logging makes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from tests.adapters.telemetry.ecs_lines import check

REPO = Path(__file__).parents[3]

SET_UP = """
import json, logging, sys
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from shared.adapters.telemetry import logging as ecs_logs, queued_logger
handler = ecs_logs.configure("probe", stream=open(sys.argv[1], "a"))
made = []
lean = logging.getLogRecordFactory()
def counted(*args, **kwargs):
    made.append(args[0])
    return lean(*args, **kwargs)
logging.setLogRecordFactory(counted)
log = logging.getLogger("auxip.probe.queued")
assert type(log) is queued_logger.QueuedLogger, type(log)
def both(*args, **kwargs):
    log.log(*args, **kwargs)
    log.addFilter(keep)
    try:
        log.log(*args, **kwargs)
    finally:
        log.removeFilter(keep)
def keep(record):
    return True
"""


def _run(body: str, log_file: Path, stdin: str = "") -> tuple[list[dict], str, str]:
    done = subprocess.run([sys.executable, "-c", SET_UP + body + "\necs_logs.flush_all()\n",
                           str(log_file)], cwd=REPO, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [check(line) for line in log_file.read_text().splitlines()]
    return lines, done.stdout, done.stderr


def _without_time(line: dict) -> dict:
    return {k: v for k, v in line.items() if k != "@timestamp"}


def _cases(count: int) -> list[dict]:
    pick = random.Random(18)
    words = ["plain", "ünïcødé ✓", 'quote " and \\ backslash', "tab\tnew\nline\x00\x1f",
             "100 % sure", "%%s literal", "", "S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"]
    cases = []
    for _ in range(count):
        shape = pick.choice(["no args", "args", "mapping", "not a string"])
        text = pick.choice(words)
        if shape == "no args":
            case = {"msg": text, "args": []}
        elif shape == "args":
            text = pick.choice([word for word in words if "%" not in word])
            case = {"msg": f"{text} %s and %d and %r", "args": [pick.choice(words),
                                                                  pick.randrange(-9, 10**20),
                                                                  pick.choice(words)]}
        elif shape == "mapping":
            case = {"msg": "%(name)s got %(count)05d", "mapping": {"name": text,
                                                                   "count": pick.randrange(999)}}
        else:
            case = {"number": pick.randrange(10**6)}
        case["level"] = pick.choice([10, 20, 30, 40, 50])
        case["fields"] = {k: pick.choice(words) for k in
                          pick.sample(["event_id", "event_type", "subject", "product"],
                                      pick.randrange(5))}
        case["span"] = pick.choice([None, [pick.getrandbits(128) | 1, pick.getrandbits(64) | 1]])
        cases.append(case)
    return cases


def test_the_short_path_writes_what_logging_writes(tmp_path: Path) -> None:
    cases = _cases(400)
    lines, out, _ = _run("""
for case in json.load(sys.stdin):
    span = case["span"]
    context = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        span[0], span[1], False, TraceFlags(1)))) if span else None
    token = __import__("opentelemetry.context").context.attach(context) if span else None
    with ecs_logs.bound(**case["fields"]):
        if "number" in case:
            both(case["level"], case["number"])
        elif "mapping" in case:
            both(case["level"], case["msg"], case["mapping"])
        else:
            both(case["level"], case["msg"], *case["args"])
    if token is not None:
        __import__("opentelemetry.context").context.detach(token)
print(len(made))
""", tmp_path / "lines.jsonl", json.dumps(cases))
    written = [case for case in cases if case["level"] >= 20]  # the root logs INFO and up
    assert len(lines) == 2 * len(written)
    # Logging made a record for the lines it wrote itself only.
    assert int(out) == len(written)
    for case, short, own in zip(written, lines[::2], lines[1::2], strict=True):
        assert _without_time(short) == _without_time(own), case
        assert abs(_stamp(short) - _stamp(own)) < 5.0
        assert short["log"]["logger"] == "auxip.probe.queued"
        if case["span"]:
            assert short["trace"]["id"] == f"{case['span'][0]:032x}"
    # Both are what logging would say of the case.
    mapping = next(case for case in written if "mapping" in case)
    index = written.index(mapping) * 2
    assert lines[index]["message"] == "{name} got {count:05d}".format(**mapping["mapping"])


def _stamp(line: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(line["@timestamp"].replace("Z", "+00:00")).timestamp()


def test_lines_something_else_could_see_take_loggings_own_path(tmp_path: Path) -> None:
    lines, out, err = _run("""
import io
seen = logging.getLogger("auxip.probe")
mine = logging.StreamHandler(io.StringIO())
seen.addHandler(mine)
log.info("seen on the way %s", 1)                    # a handler between: its own path
seen.removeHandler(mine)
root_too = logging.StreamHandler(io.StringIO())
logging.getLogger().addHandler(root_too)
log.info("seen by a second root handler")             # a second root handler
logging.getLogger().removeHandler(root_too)
log.info("with extra", extra={"event.action": "auxip.probe_action"})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("with an exception")
log.info("with a stack", stack_info=True)
log.info("arguments that do not format %d", "x")     # logging reports it, writes nothing
log.info("a mapping that does not format %(missing)s", {"here": 1})
alone = logging.getLogger("auxip.lonely")
alone.propagate = False
alone.warning("no handler reached")                   # logging's last resort: stderr
log.info("short")
print(len(made), mine.stream.getvalue().count("seen"), root_too.stream.getvalue().count("seen"))
""", tmp_path / "lines.jsonl")
    assert [line["message"] for line in lines] == [
        "seen on the way 1", "seen by a second root handler", "with extra",
        "with an exception", "with a stack", "short"]
    # Every line but the last went through a record; the last one did not.
    assert out.split() == ["8", "1", "1"]
    assert lines[2]["event"]["action"] == "auxip.probe_action"
    assert lines[3]["error"]["type"] == "ZeroDivisionError"
    assert err.count("--- Logging error ---") == 2 and "no handler reached" in err


def test_a_forked_child_writes_its_own_pid(tmp_path: Path) -> None:
    lines, out, _ = _run("""
import os
log.info("parent")
ecs_logs.flush_all()
child = os.fork()
if child == 0:
    log.info("child")
    ecs_logs.flush_all()
    os._exit(0)
os.waitpid(child, 0)
print(os.getpid(), child)
""", tmp_path / "lines.jsonl")
    parent, child = (int(word) for word in out.split())
    assert {line["message"]: line["process"]["pid"] for line in lines} == {
        "parent": parent, "child": child}
