"""The table of bad inputs the hardening suite tries, counted from the tables its tests run.

Nothing here is a list of its own: each row reads the table (or the Hypothesis settings)
that a test module parametrizes with, so the figures cannot drift from what runs. The
README's section on faults states the totals; test_bad_inputs checks that it does.

    kind   what                                                where
    file   broken CSV files, each refused with its message     test_broken_csv.BROKEN
    file   numbers that are not plain decimals                 test_parsing.NOT_PLAIN_NUMBERS
    file   IDs with hidden characters, and a stray quote       test_parsing.HIDDEN_IN_IDS (+1)
    file   headers of 100,000 and 30,000 names                 test_parsing (2)
    file   Latin-1 and Windows-1252 text (read once confirmed)  test_parsing (2)
    api    malformed bodies                                    test_api (parametrized)
    api    wrong tokens                                        test_api (parametrized)
    api    invalid fields, batches, sizes                      test_api, test_parsing
    api    explicit examples of the fuzz tests                 test_fuzz (@example)
    form   posts without or with a wrong CSRF token            test_security.CSRF_POSTS
    form   numbers that are not plain: prediction and admin    test_parsing
    form   IDs with hidden characters in the admin             test_parsing.HIDDEN_IN_IDS
    form   unbounded text: segment form and admin              test_exports.TOO_LONG
    form   explicit examples of the fuzz tests                 test_fuzz (@example)
    fuzz   generated API bodies and form posts                 test_fuzz (max_examples each)
"""

from __future__ import annotations

from tests.hardening import (
    test_api,
    test_broken_csv,
    test_exports,
    test_fuzz,
    test_parsing,
    test_security,
)


def _examples(test) -> int:
    return len(getattr(test, "hypothesis_explicit_examples", ()))


def _parametrized(test, name: str) -> int:
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0].replace(" ", "").startswith(name):
            return len(mark.args[1])
    raise LookupError(f"{test.__name__} is not parametrized with {name}")


API_FUZZ_TESTS = (
    test_fuzz.test_any_json_body_gets_a_prediction_or_a_json_error,
    test_fuzz.test_every_customer_inside_the_ranges_gets_a_sane_prediction,
    test_fuzz.test_any_bytes_get_a_prediction_or_a_json_error,
)
FORM_FUZZ_TESTS = (
    test_fuzz.test_the_prediction_form_with_any_text_answers_with_a_page,
    test_fuzz.test_the_members_page_with_any_query_answers_with_a_page,
    test_fuzz.test_the_run_comparison_with_any_query_answers_with_a_page,
)


def inventory() -> dict[str, dict[str, int]]:
    """{kind: {what: how many}} of the inputs above."""
    hidden = len(test_parsing.HIDDEN_IN_IDS)
    numbers = len(test_parsing.NOT_PLAIN_NUMBERS)
    return {
        "file": {
            "broken CSV files": len(test_broken_csv.BROKEN),
            "numbers that are not plain": numbers,
            "IDs with hidden characters or a stray quote": hidden + 1,
            "wide headers": 2,
            "Latin-1 and Windows-1252 files": 2,
        },
        "api": {
            "malformed bodies": _parametrized(
                test_api.test_a_malformed_body_is_400_naming_what_is_wrong, "body,field"
            ),
            "wrong tokens": _parametrized(
                test_api.test_a_call_with_a_wrong_token_is_refused_with_401, "authorization"
            ),
            # one customer with five bad fields, a batch with four, 1,001 customers, IDs with
            # hidden characters, numbers of 31 and 5,000 digits
            "invalid fields, batches and sizes": 3 + hidden + 2,
            "explicit fuzz examples": sum(_examples(t) for t in API_FUZZ_TESTS),
        },
        "form": {
            "CSRF": 2 * len(test_security.CSRF_POSTS) + 1,
            "numbers that are not plain": 2 * numbers,
            "IDs with hidden characters": hidden,
            "unbounded text": 2 * len(test_exports.TOO_LONG),
            "explicit fuzz examples": sum(_examples(t) for t in FORM_FUZZ_TESTS),
        },
        "fuzz": {
            "generated API bodies": test_fuzz.FUZZ.max_examples * len(API_FUZZ_TESTS),
            "generated form posts": test_fuzz.FUZZ.max_examples * len(FORM_FUZZ_TESTS),
        },
    }


def totals() -> dict[str, int]:
    return {kind: sum(rows.values()) for kind, rows in inventory().items()}
