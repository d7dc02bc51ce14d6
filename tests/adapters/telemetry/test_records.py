"""The cheaper record holds what logging's own would, value for value."""

from __future__ import annotations

import logging
import sys

import pytest

from shared.adapters.telemetry import records

_TIMES = {"created", "msecs", "relativeCreated"}


def _both(*args: object, **kwargs: object) -> tuple[dict, dict]:
    standard = logging.LogRecord(*args, **kwargs)  # type: ignore[arg-type]
    lean = records.LeanRecord(*args, **kwargs)  # type: ignore[arg-type]
    return standard.__dict__, lean.__dict__


@pytest.mark.parametrize("path", ["(unknown file)", "/srv/auxip/shared/pipeline/ingest.py", ""])
@pytest.mark.parametrize("args", [(), ("a", 3), ({"key": "v"},), ({},), (0,)])
def test_same_attributes_and_values(path: str, args: tuple) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        error = sys.exc_info()
    standard, lean = _both("auxip.x", logging.WARNING, path, 12, "m %s", args, error,
                           "handle", "stack")
    assert standard.keys() == lean.keys()
    assert {k: v for k, v in lean.items() if k not in _TIMES} == \
        {k: v for k, v in standard.items() if k not in _TIMES}
    assert abs(lean["created"] - standard["created"]) < 1.0


def test_unnamed_level_and_message() -> None:
    standard, lean = _both("auxip.x", 25, "(unknown file)", 0, "%(key)s", ({"key": 7},), None)
    assert lean["levelname"] == standard["levelname"] == "Level 25"
    record = records.LeanRecord("auxip.x", 25, "(unknown file)", 0, "%(key)s", ({"key": 7},),
                                None)
    assert record.getMessage() == "7"


def test_install_keeps_someone_elses_factory() -> None:
    before = logging.getLogRecordFactory()
    try:
        logging.setLogRecordFactory(logging.LogRecord)
        assert records.install() is True
        assert logging.getLogRecordFactory() is records.LeanRecord
        logging.setLogRecordFactory(lambda *a, **k: logging.LogRecord(*a, **k))
        assert records.install() is False
        assert logging.getLogRecordFactory() is not records.LeanRecord
    finally:
        logging.setLogRecordFactory(before)
