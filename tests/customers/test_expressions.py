"""Derived-column expressions (--derive "name=..."): parsing, evaluation and refusals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from customers import expressions
from customers.expressions import (
    DERIVE_USAGE,
    Expression,
    ExpressionError,
    parse_derivation,
    parse_expression,
)


def value_of(text: str, **values: float | None) -> float | None:
    return parse_expression(text).evaluate(values)


def vectorised(expression: Expression, rows: list[dict[str, float | None]]) -> np.ndarray:
    names = {name for row in rows for name in row}
    columns = {
        name: np.array([np.nan if row.get(name) is None else row[name] for row in rows])
        for name in names
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning may escape
        return expression.evaluate_columns(columns)


# ---------------------------------------------------------------- what users write


def test_the_documented_examples_compute_the_right_numbers():
    assert value_of("2014-[Year_Birth]", Year_Birth=1980) == 34
    assert value_of("[Income]/1000", Income=58138) == 58.138
    total_spend = parse_expression("[MntWines]+[MntFruits]+[MntMeatProducts]")
    assert total_spend.evaluate({"MntWines": 635, "MntFruits": 88, "MntMeatProducts": 546}) == 1269
    assert value_of("([A] + 2.5) * -[B] / (1 + [C])", A=1.5, B=2, C=3) == -2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10-4-3", 3),
        ("2+3*4", 14),
        ("8/4/2", 1),
        ("(2+3)*4", 20),
        ("2*3+4*5", 26),
        ("100/10*2", 20),
        ("1-2+3", 2),
        (".5+0.25+2014", 2014.75),
    ],
)
def test_precedence_and_left_associativity(text, expected):
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("-[a]*2", -6), ("2*-[a]", -6), ("--[a]", 3), ("+[a]", 3), ("-(1+[a])", -4), ("1--[a]", 4)],
)
def test_unary_minus_and_plus(text, expected):
    assert value_of(text, a=3) == expected


def test_whitespace_between_tokens_is_ignored():
    assert value_of(" \t( [a]\n+ 1 ) *2 ", a=1) == 4


def test_column_names_may_hold_spaces_and_punctuation_and_are_stripped():
    expression = parse_expression("[ Annual income (k$) ] * 2 + [ Annual income (k$)]")

    assert expression.columns == ("Annual income (k$)",)
    assert expression.evaluate({"Annual income (k$)": 10}) == 30


def test_columns_are_listed_once_in_first_appearance_order():
    expression = parse_expression("[b] + [a] * [b] - [c] / [a]")

    assert expression.columns == ("b", "a", "c")
    assert parse_expression("2014").columns == ()


def test_the_text_is_kept_stripped():
    assert parse_expression("  2014-[Year_Birth] ").text == "2014-[Year_Birth]"


# ---------------------------------------------------------------- missing values


@pytest.mark.parametrize("blank", [None, math.nan])
def test_a_blank_operand_makes_the_result_missing(blank):
    assert value_of("2014-[Year_Birth]", Year_Birth=blank) is None
    assert value_of("[a]*0+1", a=blank) is None


def test_an_absent_column_counts_as_missing_rather_than_a_key_error():
    assert value_of("[a]+[b]", a=1) is None


@pytest.mark.parametrize("text", ["[a]/0", "[a]/([b]-[b])", "0/0", "1/(1/0)", "[a]/-0"])
def test_division_by_zero_gives_missing(text):
    assert value_of(text, a=5, b=2) is None


def test_a_result_too_large_for_a_float_is_missing():
    assert value_of("[a]*[a]", a=1e200) is None
    assert value_of("1/([a]*[a])", a=1e200) is None  # an overflow stays missing
    assert value_of("[a]", a=math.inf) is None


# ---------------------------------------------------------------- vectorised evaluation


ROWS: list[dict[str, float | None]] = [
    {"A": 1.5, "B": 2, "C": 3},
    {"A": None, "B": 2, "C": 3},
    {"A": 1, "B": None, "C": -1},
    {"A": 4, "B": -0.5, "C": -1},
    {"A": -2.5, "B": 7, "C": 0.25},
    {"A": 1e200, "B": 1e200, "C": 0},
]


@pytest.mark.parametrize(
    "text",
    [
        "([A] + 2.5) * -[B] / (1 + [C])",
        "[A]/[C] - [B]",
        "2014-[A]*[B]",
        "1/([A]*[B])",
        "-[C]",
        "7",
    ],
)
def test_vectorised_evaluation_equals_the_scalar_one_row_by_row(text):
    expression = parse_expression(text)

    result = vectorised(expression, ROWS)

    assert result.dtype == np.float64
    assert result.shape == (len(ROWS),)
    for row, got in zip(ROWS, result, strict=True):
        expected = expression.evaluate(row)
        if expected is None:
            assert math.isnan(got), (row, got)
        else:
            assert got == expected, (row, got, expected)


def test_vectorised_evaluation_marks_division_by_zero_and_blanks_as_nan():
    expression = parse_expression("[a]/[b]")

    result = vectorised(expression, [{"a": 1, "b": 0}, {"a": 0, "b": 0}, {"a": 6, "b": 3}])

    assert np.isnan(result[:2]).all()
    assert result[2] == 2


def test_vectorised_evaluation_leaves_the_input_arrays_alone():
    a = np.array([1.0, np.inf, np.nan])
    before = a.copy()

    parse_expression("-[a]").evaluate_columns({"a": a})

    np.testing.assert_array_equal(a, before)


def test_vectorised_absent_column_is_all_missing_and_constants_fill_the_length():
    given = {"other": np.array([1.0, 2.0, 3.0])}

    assert np.isnan(parse_expression("[a]+1").evaluate_columns(given)).all()
    np.testing.assert_array_equal(parse_expression("2*3").evaluate_columns(given), [6.0] * 3)


def test_vectorised_evaluation_refuses_columns_of_different_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        parse_expression("[a]+[b]").evaluate_columns({"a": np.zeros(2), "b": np.zeros(3)})


# ---------------------------------------------------------------- refusals


def refusal(text: str) -> str:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    return str(caught.value)


def test_an_error_message_says_what_and_where():
    assert refusal("2014-*[x]") == (
        "unexpected '*' at character 6 of '2014-*[x]'; expected a number, a [column name] or '('"
    )
    assert issubclass(ExpressionError, ValueError)


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("__import__('os').system('x')", "'__import__' is not allowed", 1),
        ("[a].__class__", "unknown character '.'", 4),
        ("lambda: 1", "'lambda' is not allowed", 1),
        ("[a]**2", "unsupported operator '**'", 4),
        ("[a]//2", "unsupported operator '//'", 4),
        ("abs([a])", "'abs' is not allowed", 1),
        ("1e3", "'1e3' is not a plain number", 1),
        ("1_000", "'1_000' is not a plain number", 1),
        ("0x10", "'0x10' is not a plain number", 1),
        ("1.2.3", "'1.2.3' is not a plain number", 1),
        ("5.", "'5.' is not a plain number", 1),
        ("'text'", 'unknown character "\'"', 1),
        ('"text"', "unknown character '\"'", 1),
        ("[a] if 1 else 2", "'if' is not allowed", 5),
        ("[a] == 1", "unsupported operator '=='", 5),
        ("[a] < 1", "unsupported operator '<'", 5),
        ("[a] % 2", "unsupported operator '%'", 5),
        ("Income/1000", "'Income' is not allowed", 1),
        ("[a], [b]", "unknown character ','", 4),
        ("[a] [b]", "unexpected '[b]'", 5),
        ("2 3", "unexpected '3'", 3),
        ("2014-", "unexpected end", 6),
        ("*2", "unexpected '*'", 1),
        ("()", "unexpected ')'", 2),
    ],
)
def test_anything_but_arithmetic_is_refused_with_the_problem_and_its_position(
    text, problem, position
):
    message = refusal(text)

    assert problem in message
    assert f"at character {position} of " in message


def test_a_bare_name_is_pointed_at_square_brackets():
    assert "column names go in square brackets, e.g. [Income]" in refusal("Income/1000")


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("(1+2", "unexpected end", 5),
        ("((1)", "unexpected end", 5),
        ("1+2)", "unexpected ')'", 4),
        ("(1+2))", "unexpected ')'", 6),
        (")(", "unexpected ')'", 1),
    ],
)
def test_unbalanced_parentheses_are_refused(text, problem, position):
    message = refusal(text)

    assert problem in message
    assert f"at character {position} of " in message


def test_an_unclosed_parenthesis_error_names_where_it_was_opened():
    assert "')' to close the '(' at character 3" in refusal("1*(2+[a]")


def test_a_stray_closing_parenthesis_is_explained():
    assert refusal("1+2)") == (
        "unexpected ')' at character 4 of '1+2)'; there is no '(' open for it to close"
    )


def test_a_missing_closing_bracket_is_refused():
    message = refusal("[Income/1000")

    assert "'[Income/1000' is missing its closing ']'" in message
    assert "at character 1 of" in message
    assert "'[b' is missing its closing ']' at character 5" in refusal("[a]+[b")


@pytest.mark.parametrize("text", ["[]", "[a]+[ ]", "[   ]*2"])
def test_an_empty_column_name_is_refused(text):
    assert "a column name in [...] is empty" in refusal(text)


def test_a_control_character_in_a_column_name_is_refused():
    assert "control character '\\x00' in a column name at character 3" in refusal("[a\x00b]")


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_an_empty_expression_is_refused(text):
    assert refusal(text) == "expression is empty"


def test_an_over_long_expression_is_refused():
    at_limit = "1+" * 499 + "11"
    assert len(at_limit) == expressions.MAX_LENGTH

    assert parse_expression(at_limit).evaluate({}) == 510
    assert refusal(at_limit + "1") == "expression is 1,001 characters long; the limit is 1,000"


def test_a_long_chain_evaluates_without_recursion_trouble():
    expression = parse_expression("+".join(["[a]"] * 249) + "+1")

    assert expression.evaluate({"a": 2}) == 499
    assert expression.evaluate_columns({"a": np.array([2.0, np.nan])})[0] == 499


def test_ten_thousand_opening_parentheses_give_an_expression_error():
    assert "characters long" in refusal("(" * 10_000 + "1")


def test_deep_nesting_is_refused_even_without_the_length_limit(monkeypatch):
    monkeypatch.setattr(expressions, "MAX_LENGTH", 1_000_000)

    for text in ["(" * 10_000 + "1" + ")" * 10_000, "-" * 100_000 + "1"]:
        assert "nesting is deeper than 50 levels at character 51 of" in refusal(text)


def test_nesting_up_to_the_limit_is_accepted():
    depth = expressions.MAX_DEPTH

    assert value_of("(" * depth + "[a]" + ")" * depth, a=2) == 2
    assert value_of("-" * depth + "[a]", a=2) == 2
    assert value_of("-(" * (depth // 2) + "1" + ")" * (depth // 2), a=2) == -1
    assert "nesting is deeper than" in refusal("(" * (depth + 1) + "1" + ")" * (depth + 1))
    assert "nesting is deeper than" in refusal("-" * (depth + 1) + "1")
    assert "nesting is deeper than" in refusal("-(" * (depth // 2) + "-1" + ")" * (depth // 2))


@pytest.mark.parametrize("text", ["١٢", "１２", "[a]*٣", "1２"])
def test_non_ascii_digits_are_refused(text):
    assert "is not an ASCII digit" in refusal(text) or "is not a plain number" in refusal(text)


def test_a_full_width_digit_error_names_it():
    assert refusal("[a]*１２") == (
        "'１' is not an ASCII digit at character 5 of '[a]*１２'; write numbers with 0-9"
    )


def test_a_number_too_large_for_a_float_is_refused():
    assert "is too large at character 3" in refusal("1+" + "9" * 400)


# ---------------------------------------------------------------- --derive options


def test_a_derivation_has_a_stripped_name_and_an_expression():
    derivation = parse_derivation(" age = 2014-[Year_Birth] ")

    assert derivation.name == "age"
    assert derivation.expression.text == "2014-[Year_Birth]"
    assert derivation.expression.columns == ("Year_Birth",)
    assert derivation.expression.evaluate({"Year_Birth": 1990}) == 24


def test_a_derivation_splits_at_the_first_equals_sign():
    derivation = parse_derivation("total spend=[a=b]+1")

    assert derivation.name == "total spend"
    assert derivation.expression.columns == ("a=b",)


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("=[a]", "the name before '=' is empty"),
        ("  =[a]", "the name before '=' is empty"),
        ("name", "'name' has no '='"),
        ("na[me=1", "the name 'na[me' must not contain '[', ']' or control characters"),
        ("name]=1", "must not contain"),
        ("na\tme=1", "must not contain"),
        ("age=", "the expression after '=' is empty"),
    ],
)
def test_a_malformed_derivation_is_refused_with_the_expected_form(option, problem):
    with pytest.raises(ExpressionError) as caught:
        parse_derivation(option)

    assert problem in str(caught.value)
    assert DERIVE_USAGE in str(caught.value)
    assert DERIVE_USAGE == 'use --derive "name=[Column A]+[Column B]"'


def test_a_derivation_with_a_bad_expression_says_what_is_wrong_in_it():
    with pytest.raises(ExpressionError, match=r"unexpected '\*' at character 6 of '2014-\*\[x\]'"):
        parse_derivation("age=2014-*[x]")
