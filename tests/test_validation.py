"""The shared boundary validators of ptdlib._validation, each against one table of bad inputs.

Every rule of a validator is tested here once, with the whole message (argument name, the rule
with its parameters, the value received) and on one line. Module tests then need only one bad
input per public function and argument to show that the function calls its validator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ptdlib._validation import (
    ORTHONORMAL_ATOL,
    STOCHASTIC_ATOL,
    as_float_array,
    check_in_range,
    check_orthonormal,
    check_positive_int,
    check_row_stochastic,
)


def _rejects(call: Callable[[], Any], message: str) -> None:
    """``call`` raises ValueError whose whole, single-line text matches the regex ``message``."""
    with pytest.raises(ValueError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text, text
    assert re.fullmatch(message, text), text


# ------------------------------------------------------------------------------ as_float_array


@pytest.mark.parametrize(("x", "ndim", "message"), [
    ([["a", "b"]], None, r"x must be a numeric array; got list"),
    (object(), None, r"x must be a numeric array; got object"),
    ([1.0, 2.0], 2, r"x must be 2-dimensional; got shape \(2,\)"),
    (np.ones((2, 2, 1)), 2, r"x must be 2-dimensional; got shape \(2, 2, 1\)"),
    ([1.0, np.nan], None, r"x must be finite; got NaN or inf at index \(1,\)"),
    ([[1.0, 2.0], [np.inf, 0.0]], None, r"x must be finite; got NaN or inf at index \(1, 0\)"),
    ([[1.0, -np.inf]], 2, r"x must be finite; got NaN or inf at index \(0, 1\)"),
])
def test_as_float_array_rejects(x: object, ndim: int | None, message: str) -> None:
    _rejects(lambda: as_float_array(x, "x", ndim=ndim), message)


def test_as_float_array_accepts_numbers_as_float64() -> None:
    out = as_float_array([[1, 2], [3, 4]], "x", ndim=2)
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert as_float_array(5, "x", ndim=0).shape == ()


# -------------------------------------------------------------------------- check_positive_int


@pytest.mark.parametrize(("value", "minimum", "message"), [
    (0, 1, r"n must be an integer >= 1; got 0"),
    (-1, 0, r"n must be an integer >= 0; got -1"),
    (np.int64(1), 2, r"n must be an integer >= 2; got 1"),
    (2.0, 1, r"n must be an integer >= 1; got 2\.0"),
    (True, 0, r"n must be an integer >= 0; got True"),
    ("3", 1, r"n must be an integer >= 1; got '3'"),
    (None, 1, r"n must be an integer >= 1; got None"),
])
def test_check_positive_int_rejects(value: object, minimum: int, message: str) -> None:
    _rejects(lambda: check_positive_int(value, "n", minimum=minimum), message)


def test_check_positive_int_accepts_the_minimum_and_numpy_integers() -> None:
    assert check_positive_int(0, "n", minimum=0) == 0
    out = check_positive_int(np.int32(7), "n")
    assert out == 7 and type(out) is int


# ------------------------------------------------------------------------------ check_in_range


@pytest.mark.parametrize(("value", "low_open", "high_open", "message"), [
    (-0.5, False, False, r"a must lie in \[0\.0, 1\.0\]; got -0\.5"),
    (1.5, False, False, r"a must lie in \[0\.0, 1\.0\]; got 1\.5"),
    (0.0, True, False, r"a must lie in \(0\.0, 1\.0\]; got 0\.0"),
    (1.0, False, True, r"a must lie in \[0\.0, 1\.0\); got 1\.0"),
    (np.nan, False, False, r"a must lie in \[0\.0, 1\.0\]; got nan"),
    (np.inf, False, False, r"a must lie in \[0\.0, 1\.0\]; got inf"),
    ("a", False, False, r"a must be a real number; got 'a'"),
    (None, False, False, r"a must be a real number; got None"),
])
def test_check_in_range_rejects(value: object, low_open: bool, high_open: bool,
                                message: str) -> None:
    _rejects(lambda: check_in_range(value, "a", 0.0, 1.0, low_open=low_open,
                                    high_open=high_open), message)


def test_check_in_range_accepts_closed_ends_but_never_infinity() -> None:
    assert check_in_range(0, "a", 0.0, 1.0) == 0.0
    assert check_in_range(np.float32(1.0), "a", 0.0, 1.0) == 1.0
    assert check_in_range("0.5", "a", 0.0, 1.0, low_open=True, high_open=True) == 0.5
    # inf is rejected even where the interval is closed at infinity
    _rejects(lambda: check_in_range(np.inf, "a", 0.0, np.inf),
             r"a must lie in \[0\.0, inf\]; got inf")


# ------------------------------------------------------------------------ check_row_stochastic


@pytest.mark.parametrize(("P", "message"), [
    (np.ones((2, 3)) / 3, r"P must be a square matrix \(or a stack of them\); got shape \(2, 3\)"),
    (np.ones(3) / 3, r"P must be a square matrix \(or a stack of them\); got shape \(3,\)"),
    (np.zeros((0, 0)), r"P must be a square matrix \(or a stack of them\); got shape \(0, 0\)"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), r"P must be non-negative; got -0\.5 at index \(0, 1\)"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), r"P must be finite; got NaN or inf at index \(0, 0\)"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]),
     r"P must be row-stochastic \(rows sum to 1 within 1e-10\); row \(0,\) sums to 1\.1"),
    (np.stack([np.eye(2), [[0.5, 0.5], [0.2, 0.7]]]),
     r"P must be row-stochastic \(rows sum to 1 within 1e-10\); row \(1, 1\) sums to 0\.9"),
    ([["a", "b"], ["c", "d"]], r"P must be a numeric array; got list"),
])
def test_check_row_stochastic_rejects(P: object, message: str) -> None:
    _rejects(lambda: check_row_stochastic(P), message)


def test_check_row_stochastic_names_the_argument_and_uses_the_stated_tolerance() -> None:
    _rejects(lambda: check_row_stochastic(-np.eye(2), "Q"),
             r"Q must be non-negative; got -1 at index \(0, 0\)")
    P = np.array([[0.25, 0.75], [0.5, 0.5]])
    P[0, 0] += 0.5 * STOCHASTIC_ATOL  # inside the tolerance: accepted unchanged
    np.testing.assert_array_equal(check_row_stochastic(P), P)
    P[0, 0] += 4 * STOCHASTIC_ATOL  # 4.5e-10 off: rejected
    _rejects(lambda: check_row_stochastic(P), r"P must be row-stochastic .* row \(0,\) sums to "
                                              r"1\.00000000045")
    stack = np.full((3, 4, 4), 0.25)
    assert check_row_stochastic(stack).shape == (3, 4, 4)


# --------------------------------------------------------------------------- check_orthonormal


@pytest.mark.parametrize(("B", "message"), [
    (np.ones(3), r"B must be 2-dimensional; got shape \(3,\)"),
    (np.zeros((3, 0)), r"B must be \(dim, rank\) with 1 <= rank <= dim; got shape \(3, 0\)"),
    (np.ones((2, 3)) / 2, r"B must be \(dim, rank\) with 1 <= rank <= dim; got shape \(2, 3\)"),
    (2 * np.eye(2), r"B must have orthonormal columns \(max \|B\^T B - I\| <= 1e-08\); got 3"),
    ([[1.0], [np.nan]], r"B must be finite; got NaN or inf at index \(1, 0\)"),
])
def test_check_orthonormal_rejects(B: object, message: str) -> None:
    _rejects(lambda: check_orthonormal(B), message)


def test_check_orthonormal_tolerance_and_name() -> None:
    B = np.eye(3)[:, :2]
    assert check_orthonormal(B + 0.1 * ORTHONORMAL_ATOL).shape == (3, 2)  # |B^T B - I| ~ 2e-9
    _rejects(lambda: check_orthonormal(B * (1 + ORTHONORMAL_ATOL), "B_star"),
             r"B_star must have orthonormal columns \(max \|B\^T B - I\| <= 1e-08\); got 2e-08")
