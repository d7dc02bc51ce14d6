"""Reading and checking what auxip logs: a line flattened to ECS dotted names and checked
against docs/collectors/ecs-fields.schema.json (the subset of ECS 8.x auxip writes), and
the security events a test caused, read from the stack's security stream (a file)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from shared.adapters.telemetry import logging as ecs_logs
from shared.adapters.telemetry import security_events

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "collectors" / \
    "ecs-fields.schema.json"
_validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()),
                                             format_checker=jsonschema.FormatChecker())


def flat(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        if isinstance(value, dict):
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def check(line: str) -> dict[str, Any]:
    """The line's document, after checking it is one ECS object (AssertionError if not)."""
    document = json.loads(line)
    fields = dict(flat(document))
    problems = [f"{'.'.join(map(str, e.path)) or '(line)'}: {e.message}"
                for e in _validator.iter_errors(fields)]
    assert not problems, f"not ECS: {problems}\n{line}"
    return document


class SecurityStream:
    """The security events written to the stack's file since `mark()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> SecurityStream:
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        return self

    def events(self, action: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """The events since the mark (each checked against the schema), of `action` and
        whose flattened fields equal `match` (`user__name="bob"` for user.name)."""
        ecs_logs.flush_all()  # this process's queue, written out
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            lines = stream.read().decode("utf-8").splitlines()
        found = []
        for line in lines:
            document = check(line)
            fields = dict(flat(document))
            if action is not None and fields.get("event.action") != action:
                continue
            if all(fields.get(key.replace("__", ".")) == value for key, value in match.items()):
                found.append(fields)
        return found

    def one(self, action: str, *, within_s: float = 10.0, **match: Any) -> dict[str, Any]:
        """The one event of `action` matching `match`: waited for (another process writes
        through its own queue), then checked to be alone."""
        deadline = time.monotonic() + within_s
        while not (found := self.events(action, **match)):
            assert time.monotonic() < deadline, (
                f"no {action} {match} in {self.path}; since the mark: {self.events()}")
            time.sleep(0.05)
        assert len(found) == 1, f"{len(found)} {action} events: {found}"
        return found[0]


def stream_of_this_stack() -> SecurityStream:
    """Points this process's security events where the stack's processes write theirs."""
    target = os.environ["AUXIP_SECURITY_EVENTS"]
    kind, where = security_events.parse_target(target)
    assert kind == "file", f"the test stack should write security events to a file: {target}"
    security_events.configure("pytest", target)
    return SecurityStream(Path(str(where))).mark()
