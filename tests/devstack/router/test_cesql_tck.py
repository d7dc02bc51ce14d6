"""The CloudEvents SQL conformance suite (tests/devstack/router/cesql_tck/, the specification's own
TCK), every case against the local router's CESQL evaluator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack.router import cesql

TCK = Path(__file__).parent / "cesql_tck"
# The attributes every CloudEvent has, for cases that give only `eventOverrides`.
REQUIRED = {"specversion": "1.0", "id": "myId", "source": "localhost.localdomain", "type": "myType"}


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: `time: 2018-04-26T14:48:09+02:00` stays the string a
    CloudEvent carries."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _expressions(text: str) -> list[str]:
    """Each case's expression as written: YAML would read `TRUE` as a boolean, `-10` as an
    integer."""
    root = yaml.compose(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    tests = next(value for key, value in root.value if key.value == "tests")
    return [next(value.value for key, value in case.value if key.value == "expression")
            for case in tests.value]


def cases() -> list:
    found = []
    for path in sorted(TCK.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        suite = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
        for number, (case, expression) in enumerate(zip(suite["tests"], _expressions(text),
                                                        strict=True)):
            case = {**case, "expression": expression}
            found.append(pytest.param(case, id=f"{path.stem}[{number}] {case['name']}"))
    return found


CASES = cases()


def test_the_whole_suite_is_here():
    # 18 files upstream; a copy that lost one would pass silently otherwise.
    assert len(list(TCK.glob("*.yaml"))) == 18


@pytest.mark.parametrize("case", CASES)
def test_tck(case):
    event = dict(case["event"]) if "event" in case else dict(REQUIRED)
    event.update(case.get("eventOverrides") or {})
    expected_error = case.get("error")
    if expected_error in ("parse", "missingFunction"):
        with pytest.raises(cesql.CesqlSyntaxError) as raised:
            cesql.parse(case["expression"])
        assert raised.value.kind == expected_error
        return
    expression = cesql.parse(case["expression"])
    value, errors = expression.evaluate_all(event)
    if expected_error is None:
        assert errors == []
    else:
        assert [error.kind for error in errors][:1] == [expected_error]
    if "result" in case:
        assert value == case["result"] and type(value) is type(case["result"])
    assert expression.matches(event) is (value is True and not errors)
