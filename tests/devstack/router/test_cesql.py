"""CESQL: the specification's examples and semantics, and robustness on arbitrary input."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.router import cesql
from devstack.router.cesql import CesqlError, CesqlEvaluationError, CesqlSyntaxError

EVENT = {"specversion": "1.0", "id": "myId", "source": "localhost.localdomain", "type": "myType"}


def value(expression: str, **attributes: str) -> object:
    return cesql.parse(expression).evaluate(EVENT | attributes)


def matches(expression: str, **attributes: str) -> bool:
    return cesql.parse(expression).matches(EVENT | attributes)


# The examples of the specification's section 5, with events that match and do not.
@pytest.mark.parametrize(
    ("expression", "attributes", "expected"),
    [
        ("EXISTS subject", {"subject": "Francesco Guardiani"}, True),
        ("EXISTS subject", {}, False),
        ("firstname = 'Francesco'", {"firstname": "Francesco"}, True),
        ("firstname = 'Francesco' OR subject = 'Francesco'", {"firstname": "Doug", "subject": "Francesco"}, True),
        ("firstname = 'Francesco' OR subject = 'Francesco'", {"firstname": "Francesco", "subject": "Doug"}, True),
        ("(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'",
         {"firstname": "Francesco", "lastname": "Guardiani", "subject": "Doug"}, True),
        ("(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'",
         {"firstname": "Doug", "lastname": "Davis", "subject": "Francesco Guardiani"}, True),
        ("(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'",
         {"firstname": "Doug", "lastname": "Davis", "subject": "Doug"}, False),
        ("sequence = 10", {"sequence": "10"}, True),
        ("sequence = 10", {"sequence": "11"}, False),
        ("hop < ttl", {"hop": "5", "ttl": "10"}, True),  # both cast to Integer: not string order
        ("int(hop) < int(ttl) and int(hop) < 1000", {"hop": "5", "ttl": "10"}, True),
        ("INT(hop) < INT(ttl) AND INT(hop) < 1000", {"hop": "5", "ttl": "10"}, True),
    ],
)
def test_specification_examples(expression, attributes, expected):
    assert matches(expression, **attributes) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("TRUE", True), ("false", False), ("0", 0), ("'abc'", "abc"), ('"AbC"', "AbC"),
        ("'it''s'", "it's"), ("'it\\'s'", "it's"), ('"say ""hi"""', 'say "hi"'), ('"a\\"b"', 'a"b'),
        ("'a\"b'", 'a"b'),
        ("4 * (2 + 3)", 20), ("(2 + 3) * 4", 20), ("7 / 2", 3), ("-7 / 2", -3), ("-7 % 2", -1), ("7 % -2", 1),
        ("2147483647 + 1", -2147483648), ("-2147483648", -2147483648), ("- -3", 3),
        ("TRUE = FALSE", False), ("1 <> 2", True), ("'abc' != 'abc'", False), ("2 <= 2", True), ("3 > 2", True),
        ("TRUE XOR TRUE", False), ("TRUE XOR FALSE", True), ("NOT FALSE", True), ("NOT 'TRUE'", False),
        # `=` casts its left operand to the right operand's type.
        ("true = 'TRUE'", False), ("'TRUE' = true", True), ("'5' = 5", True),
        ("'abc' LIKE 'abc'", True), ("'azbzc' LIKE 'a_b_c'", True), ("'abc' LIKE 'a_b_c'", False),
        ("'azzzbzzzc' LIKE 'a%b%c'", True), ("'a%b%c' LIKE 'a\\%b\\%c'", True), ("'azbzc' LIKE 'a\\%b\\%c'", False),
        ("'a_b' LIKE 'a\\_b'", True), ("'axb' LIKE 'a\\_b'", False), ("'ab\\c' LIKE 'ab\\c'", True),
        ("'' LIKE '%'", True), ("'x' NOT LIKE 'x'", False), ("234 LIKE '23_'", True), ("TRUE LIKE 'tr%'", True),
        ("'a' IN ('b', 'a')", True), ("'a' NOT IN ('b', 'a')", False), ("5 IN ('5', 6)", True),
        ("LENGTH('abc')", 3), ("LENGTH(TRUE)", 4), ("CONCAT('a', 'b', 1)", "ab1"), ("CONCAT()", ""),
        ("CONCAT_WS(',', 'a', 'b')", "a,b"), ("LOWER('AbC')", "abc"), ("UPPER('abc')", "ABC"),
        ("TRIM('  a b  ')", "a b"), ("LEFT('abc', 2)", "ab"), ("RIGHT('abc', 2)", "bc"),
        ("SUBSTRING('Quadratically', 5)", "ratically"), ("SUBSTRING('Sakila', -5, 3)", "aki"),
        ("SUBSTRING('abc', 0)", ""), ("ABS(-3)", 3), ("INT('-1')", -1), ("BOOL(0)", False), ("BOOL(-5)", True),
        ("STRING(TRUE)", "true"), ("lower('ABC')", "abc"),
        # AND, OR and XOR share one precedence level and group to the right (reference grammar).
        ("FALSE AND TRUE OR TRUE", False), ("(FALSE AND TRUE) OR TRUE", True),
        ("1 + 2 * 3", 7), ("1 < 2 = TRUE", True),
    ],
)
def test_literals_operators_and_functions(expression, expected):
    assert value(expression) == expected
    assert type(value(expression)) is type(expected)


def test_attributes_are_strings_and_identifiers_are_case_insensitive():
    assert value("subject", subject="S1A") == "S1A"
    assert value("SUBJECT", subject="S1A") == "S1A"
    assert matches("EXISTS id AND EXISTS specversion")
    assert matches("type = 'org.auxip.file.arrived.v1'", type="org.auxip.file.arrived.v1")


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("missing = 2", "missingAttribute"),
        ("NOT missing", "missingAttribute"),
        ("1 / 0", "math"),
        ("INT('ABC')", "cast"),
        ("NOT 10", "cast"),
        ("'abc' < 1", "cast"),
        ("LEFT('abc', -2)", "functionEvaluation"),
        ("SUBSTRING('abcdef', 10)", "functionEvaluation"),
        ("ABS(-2147483648)", "math"),
    ],
)
def test_evaluation_errors_make_a_filter_fail(expression, kind):
    with pytest.raises(CesqlEvaluationError) as raised:
        value(expression)
    assert raised.value.kind == kind
    assert matches(expression) is False


def test_missing_attributes_and_short_circuits():
    # An error anywhere evaluated fails the filter, even under NOT ...
    assert matches("NOT (missing = 'x')") is False
    assert matches("true AND (missing = '')") is False
    # ... but AND and OR do not evaluate what they do not need.
    assert matches("type = 'myType' OR missing = 'x'") is True
    assert matches("type = 'other' AND missing = 'x'") is False
    assert matches("false AND (1 != 1 / 0)") is False
    assert matches("true OR (1 != 1 / 0)") is True
    assert matches("EXISTS missing") is False


def test_non_boolean_results_do_not_match():
    assert matches("'true'") is False
    assert matches("1") is False
    assert matches("subject", subject="true") is False


@pytest.mark.parametrize(
    "expression",
    [
        "", "   ", "a +", "(((", "a = ", "'unterminated", "LIKE LIKE", "x LIKE y", "x IN ()", "EXISTS 'a'",
        "FOO(1)", "LOWER()", "LOWER('a', 'b')", "SUBSTRING('a')", "a_b = 1", "averyveryverylongattributename = 1",
        "2147483648", "1 2", "a = 'x' AND", "@", "NOT " * 150 + "TRUE",
        " AND ".join(["a = 1"] * 300),
    ],
)
def test_syntax_errors_are_reported_when_parsing(expression):
    with pytest.raises(CesqlSyntaxError):
        cesql.parse(expression)


def test_redundant_parentheses_cost_no_depth():
    assert value("(" * 300 + "1" + ")" * 300) == 1


# -- properties ------------------------------------------------------------------------------

TOKENS = [
    "AND", "or", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "false", "(", ")", ",", "=", "!=", "<>",
    "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "0", "1", "2147483647", "99999999999", "'a%'", "'_b'",
    "''", "'x''y'", '"q"', "'\\'", "subject", "type", "missing", "n", "LOWER", "UPPER", "LENGTH", "CONCAT",
    "CONCAT_WS", "SUBSTRING", "ABS", "INT", "BOOL", "STRING", "LEFT", "RIGHT", "TRIM", "NOPE", "'", '"', "\\",
]
ATTRIBUTE_VALUES = st.one_of(
    st.text(max_size=12), st.sampled_from(["true", "FALSE", "0", "-7", "2147483647", "9999999999", "a%b"])
)
ATTRIBUTES = st.dictionaries(st.sampled_from(["subject", "type", "n", "x1"]), ATTRIBUTE_VALUES, max_size=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_cesql_errors(text):
    try:
        expression = cesql.parse(text)
    except CesqlError:
        return
    assert isinstance(expression.matches(EVENT), bool)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14).map(" ".join), ATTRIBUTES)
def test_token_soup_parses_or_fails_cleanly_and_evaluates_without_surprises(text, attributes):
    try:
        expression = cesql.parse(text)
    except CesqlError:
        return
    event = EVENT | attributes
    try:
        result = expression.evaluate(event)
    except CesqlEvaluationError:
        assert expression.matches(event) is False
        return
    assert type(result) in (str, int, bool)
    if type(result) is int:
        assert -(2**31) <= result < 2**31
    assert expression.matches(event) is (result is True)


def _like_reference(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab%_", max_size=10), st.text(alphabet="ab%_", max_size=12))
def test_like_agrees_with_a_regular_expression(pattern, text):
    assert value(f"x LIKE '{pattern}'", x=text) is _like_reference(text, pattern)
