"""The security stream's targets and its documents: a syslog receiver gets RFC 5424 lines
carrying the ECS event, a dead collector never fails the caller, log lines and every
example of the catalogue (docs/security-events.md) are ECS, every action the code emits is
in the catalogue, and the shipped Fluent Bit parser reads the lines' time."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from shared.adapters.telemetry import logging as ecs_logs
from shared.adapters.telemetry import security_events
from tests.adapters.telemetry.ecs_lines import check

REPO = Path(__file__).resolve().parents[3]
CATALOGUE = REPO / "docs" / "security-events.md"


@pytest.fixture
def restored() -> Iterator[None]:
    yield
    security_events.configure("pytest", os.environ.get("AUXIP_SECURITY_EVENTS", "stderr"))


def test_a_syslog_receiver_gets_one_rfc5424_line_per_event(restored: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10)
        security_events.configure("probe", f"syslog://127.0.0.1:{receiver.getsockname()[1]}")
        security_events.emit("auxip.token.refused", "authentication", "failure",
                             reason="expired", user="mallory", source_ip="192.0.2.7")
        ecs_logs.flush_all()
        datagram = receiver.recv(65536).decode()
    match = re.fullmatch(r"<(\d+)>1 (\S+) (\S+) auxip-probe (\d+) auxip\.token\.refused - (.*)",
                         datagram, re.DOTALL)
    assert match, datagram
    assert int(match[1]) == 10 * 8 + 4  # facility authpriv, severity warning
    event = check(match[5])
    assert event["event"]["reason"] == "expired" and event["source"]["ip"] == "192.0.2.7"
    assert event["user"]["name"] == "mallory"


def test_a_collector_that_is_down_never_fails_the_caller(restored: None) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    security_events.configure("probe", f"syslog+tcp://127.0.0.1:{port}")  # refused: stderr
    before = security_events.failures
    security_events.emit("auxip.role.denied", "iam", "failure", user="alice",
                         source_ip="not an address")
    assert security_events.failures == before


@pytest.mark.parametrize("target", ["file:relative/path", "syslog://", "kafka://x:1", ""])
def test_a_mistaken_target_is_refused_at_start(target: str) -> None:
    with pytest.raises(ValueError, match="AUXIP_SECURITY_EVENTS"):
        security_events.parse_target(target)


@pytest.mark.parametrize("where", ["file", "stream"])
def test_log_lines_are_ecs(where: str, tmp_path: Path) -> None:
    """A file: formatted by the writer process; a stream with no descriptor: by this
    process's writer thread. The same documents either way."""
    stream: io.StringIO | io.TextIOWrapper = (
        (tmp_path / "probe.log").open("a") if where == "file" else io.StringIO())
    handler = ecs_logs.configure("probe", stream=stream)
    probe = logging.getLogger("auxip.probe")
    try:
        probe.info("plain")
        with ecs_logs.bound(event_id="e-1", event_type="org.auxip.file.arrived",
                            product="S1A_AUX_CAL_V20171017T080000_G20171013T101200.SAFE"):
            try:
                raise ValueError("broken")
            except ValueError:
                probe.exception("failed")
        ecs_logs.flush_all()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    text = stream.getvalue() if isinstance(stream, io.StringIO) else \
        (tmp_path / "probe.log").read_text()
    plain, failed = (check(line) for line in text.splitlines())
    assert plain["message"] == "plain" and "auxip" not in plain
    assert failed["error"]["type"] == "ValueError" and failed["event"]["id"] == "e-1"
    assert failed["auxip"]["event_type"] == "org.auxip.file.arrived"
    assert "raise ValueError" in failed["error"]["stack_trace"]


def _examples() -> dict[str, dict]:
    lines = [line for line in CATALOGUE.read_text().splitlines() if line.startswith('{"@')]
    documents = [check(line) for line in lines]
    return {d["event"]["action"]: d for d in documents}


def _emitted() -> set[str]:
    """The actions the code names: emit("auxip...."), and operator_events.done("x") as
    auxip.operator.x (the routing files' commands name theirs with their kind)."""
    actions: set[str] = set()
    for path in (REPO / "shared").rglob("*.py"):
        text = path.read_text()
        actions |= set(re.findall(r'emit\(\s*"(auxip\.[a-z_.]+)"', text))
        actions |= set(re.findall(r'"(auxip\.[a-z]+\.[a-z_]+)" if', text))
        actions |= set(re.findall(r' else "(auxip\.[a-z]+\.[a-z_]+)"', text))
        actions |= set(re.findall(r'_changed\(\s*"(auxip\.[a-z_.]+)"', text))
        for first, second in re.findall(r'done\(\s*"([a-z_.]+)" if \w+ else "([a-z_.]+)"',
                                        text):
            actions |= {f"auxip.operator.{first}", f"auxip.operator.{second}"}
        actions |= {f"auxip.operator.{a}" for a in re.findall(
            r'operator_events\.done\(\s*"([a-z_.]+)"', text)}
        if "operator_events.done(f\"{kind}s.load\"" in text:
            actions |= {f"auxip.operator.{kind}s.{a}" for kind in ("source", "route")
                        for a in ("load", "enable", "disable")}
    return actions


def test_every_emitted_action_has_an_example_in_the_catalogue() -> None:
    examples = _examples()
    emitted = _emitted()
    assert len(emitted) > 20, emitted  # the pattern above still finds them
    assert emitted - set(examples) == set(), "actions missing from docs/security-events.md"
    assert set(examples) - emitted == set(), "examples of actions nothing emits"


def _fluent_bit_sections(text: str) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit's classic format: [SECTION], then `Key  Value` lines; # comments."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], {}))
            continue
        key, _, value = line.partition(" ")
        sections[-1][1][key] = value.strip()
    return sections


def test_the_fluent_bit_parser_reads_the_time_of_a_line() -> None:
    folder = REPO / "docs" / "collectors" / "fluent-bit"
    [(name, parser)] = _fluent_bit_sections((folder / "parsers.conf").read_text())
    assert (name, parser["Name"], parser["Format"]) == ("PARSER", "auxip_ecs", "json")
    assert parser["Time_Key"] == "@timestamp"
    # Fluent Bit's %L is the fraction of a second: Python's %f reads the same digits.
    time_format = parser["Time_Format"].replace("%L", "%f")
    for example in _examples().values():
        assert datetime.strptime(example["@timestamp"], time_format).year >= 2024
    config = _fluent_bit_sections((folder / "fluent-bit.conf").read_text())
    assert all(s["Parser"] == "auxip_ecs" for n, s in config if "Parser" in s)
    assert any(s.get("Path") == "/var/log/auxip/security.jsonl" for _, s in config)
