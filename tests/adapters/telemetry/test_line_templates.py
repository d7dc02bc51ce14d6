"""A plain line made from its shape's template is the line ecs-logging writes, byte for byte,
whatever its values; anything a template cannot carry goes to the formatter."""

from __future__ import annotations

import json
import logging
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.telemetry.ecs_format import (
    CONTEXT_KEYS,
    EcsFormatter,
    LineTemplates,
    Wire,
    from_wire,
)

_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "%", "%s %d", '"quoted"', "back\\slash", "tab\tnew\nline", "\x00\x1f\x7f",
     "auxip-template-message-0f1e2d", "é中文🚀"])
_contexts = st.none() | st.dictionaries(
    st.sampled_from([*CONTEXT_KEYS, "other"]), _texts, max_size=5)
_traces = st.none() | st.tuples(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1))
_items = st.tuples(
    st.just(1),
    st.floats(0, 4102444800, allow_nan=False, allow_infinity=False),
    st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, 25]),
    st.text(alphabet=string.ascii_lowercase + ".%_", min_size=1, max_size=20),
    _texts,
    st.none() | st.integers(1, 2**22),
    st.none(),
    _contexts,
    _traces,
    st.none(),
)


def _formatter_line(formatter: EcsFormatter, item: Wire) -> str:
    return formatter.format(from_wire(item)[1])


@settings(max_examples=400, deadline=None)
@given(item=_items)
def test_a_templated_line_is_the_formatters_line(item: Wire) -> None:
    formatter = EcsFormatter("auxip-probe")
    templates = LineTemplates(formatter)
    line = templates.line(item)
    expected = _formatter_line(formatter, item)
    if line is not None:
        assert line == expected
    # a second line of the same shape, from the cached template
    again = (*item[:4], item[4] + " again", *item[5:])
    second = templates.line(again)
    assert second is None or second == _formatter_line(formatter, again)


def test_plain_lines_take_the_template_and_the_rest_the_formatter() -> None:
    formatter = EcsFormatter("auxip-probe")
    templates = LineTemplates(formatter)
    plain: Wire = (1, 1765000000.5, logging.INFO, "auxip.x", "m", 7, None,
                   {"event_id": "e", "product": "P"}, (1, 2), None)
    assert templates.line(plain) == _formatter_line(formatter, plain)
    assert json.loads(templates.line(plain) or "")["trace"]["id"] == f"{1:032x}"
    with_extras = (*plain[:6], {"event.action": "auxip.probe"}, *plain[7:])
    with_stack = (*plain[:9], "Stack (most recent call last): ...")
    not_a_string = (*plain[:7], {"event_id": 3}, *plain[8:])
    for item in (with_extras, with_stack, not_a_string):
        assert templates.line(item) is None  # the formatter writes these


@pytest.mark.parametrize("name", ["auxip-template-message-0f1e2d", "auxip-template-x"])
def test_a_logger_named_like_a_placeholder_gets_no_template(name: str) -> None:
    formatter = EcsFormatter("auxip-probe")
    item: Wire = (1, 1765000000.5, logging.INFO, name, "m", 7, None, None, None, None)
    assert LineTemplates(formatter).line(item) is None
