"""Tests for ptdlib.schedules: known values, the callable wrapper, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import schedules


@pytest.mark.parametrize(("schedule", "t", "expected"), [
    (schedules.constant(0.1), [0, 1, 1000], [0.1, 0.1, 0.1]),
    (schedules.inverse_time(2.0, 4.0), [0, 1, 6], [0.5, 0.4, 0.2]),
    (schedules.inverse_time(1.0), [0, 1, 9], [1.0, 0.5, 0.1]),
    (schedules.from_callable(lambda t: 1.0 / (t + 2)), [0, 2], [0.5, 0.25]),
    (schedules.from_callable(lambda t: 0.3 * np.ones_like(t, dtype=float), vectorized=True),
     [0, 5], [0.3, 0.3]),
    (schedules.from_callable(lambda t: 0.3, vectorized=True), [0, 5], [0.3, 0.3]),
])
def test_known_values(schedule: schedules.Schedule, t: list[int], expected: list[float]) -> None:
    np.testing.assert_allclose(schedule.values(np.asarray(t)), expected, rtol=0, atol=1e-15)
    assert schedule(t[-1]) == pytest.approx(expected[-1], abs=1e-15)


def test_values_keep_the_shape_of_t() -> None:
    t = np.arange(6).reshape(2, 3)
    assert schedules.inverse_time(1.0).values(t).shape == (2, 3)
    assert schedules.constant(0.5).values(np.int64(3)).shape == ()


@settings(max_examples=40, deadline=None)
@given(alpha0=st.floats(1e-6, 1e3), t0=st.floats(1e-3, 1e4), t=st.integers(0, 10**9))
def test_inverse_time_is_positive_and_decreasing(alpha0: float, t0: float, t: int) -> None:
    schedule = schedules.inverse_time(alpha0, t0)
    a, b = schedule.values(np.asarray([t, t + 1]))
    assert 0 < b < a
    assert a == pytest.approx(alpha0 / (t + t0), rel=1e-14)


def test_as_schedule_normalises_every_form() -> None:
    assert schedules.as_schedule(0.2) == schedules.constant(0.2)
    assert schedules.as_schedule(1)(7) == 1.0
    inv = schedules.inverse_time(1.0, 3.0)
    assert schedules.as_schedule(inv) is inv
    assert schedules.as_schedule(lambda t: 1.0 / (t + 1))(3) == 0.25


def test_repr_names_the_schedule() -> None:
    assert repr(schedules.constant(0.1)) == "constant(0.1)"
    assert repr(schedules.inverse_time(1.0, 2.0)) == "inverse_time(1.0, t0=2.0)"

    def halving(t: int) -> float:
        return 0.5 ** (t + 1)

    assert repr(schedules.from_callable(halving)) == "from_callable(halving)"


# One bad value per argument (the interval in the message pins the rule); the other bad values
# of check_in_range (negative, NaN, inf) are tests/test_validation.py. as_schedule's own type
# rule has two branches: bool, and anything that is not a number.
@pytest.mark.parametrize(("factory", "args", "match"), [
    (schedules.constant, (0.0,), r"^alpha must lie in \(0\.0, inf\); got 0\.0$"),
    (schedules.inverse_time, (0.0, 1.0), r"^alpha0 must lie in \(0\.0, inf\); got 0\.0$"),
    (schedules.inverse_time, (1.0, 0.0), r"^t0 must lie in \(0\.0, inf\); got 0\.0$"),
    (schedules.as_schedule, (0.0,), r"^step_size must lie in \(0\.0, inf\); got 0\.0$"),
    (schedules.as_schedule, ("0.1",), r"^step_size must be a positive number, .*; got str$"),
    (schedules.as_schedule, (True,), r"^step_size must be a positive number, .*; got bool$"),
    (schedules.from_callable, (0.1,), "fn"),
])
def test_bad_arguments_raise(factory, args, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory(*args)


@pytest.mark.parametrize("vectorized", [False, True])
def test_callable_values_are_checked_and_the_bad_step_is_named(vectorized: bool) -> None:
    def bad_after_three(t):
        return np.where(np.asarray(t) < 3, 0.1, -0.1) if vectorized else (0.1 if t < 3 else -0.1)

    schedule = schedules.from_callable(bad_after_three, vectorized=vectorized)
    np.testing.assert_array_equal(schedule.values(np.arange(3)), [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"alpha_t = -0\.1 at t = 3"):
        schedule.values(np.arange(10))
    with pytest.raises(ValueError, match="at t = 4"):
        schedule(4)


def test_callable_returning_nan_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite and > 0"):
        schedules.from_callable(lambda t: math.nan)(0)


def test_polynomial_known_values_and_inverse_time_special_case() -> None:
    schedule = schedules.polynomial(8.0, t0=4.0, power=0.5)
    np.testing.assert_allclose(schedule.values(np.array([0, 5, 12])), [4.0, 8.0 / 3.0, 2.0])
    t = np.arange(0, 1000, 37)
    np.testing.assert_array_equal(schedules.polynomial(3.0, 7.0, 1.0).values(t),
                                  schedules.inverse_time(3.0, 7.0).values(t))
    assert repr(schedule) == "polynomial(8.0, t0=4.0, power=0.5)"


@pytest.mark.parametrize("power", [0.0, -0.5, 1.5, math.nan])
def test_polynomial_rejects_a_power_outside_zero_one(power: float) -> None:
    with pytest.raises(ValueError, match="power"):
        schedules.polynomial(1.0, 1.0, power)


def test_two_timescales_of_a_constant_step() -> None:
    heads, basis = schedules.two_timescales(0.1, lag=0.25, t0=100.0)
    t = np.array([0, 100, 1500])
    np.testing.assert_allclose(heads.values(t), 0.1)
    # beta_t = alpha (t0 / (t + t0))^lag: 0.1, 0.1 / 2^0.25, 0.1 / 16^0.25
    np.testing.assert_allclose(basis.values(t), [0.1, 0.1 / 2**0.25, 0.05])


def test_two_timescales_of_an_inverse_time_step_keeps_it_for_the_basis() -> None:
    step = schedules.inverse_time(100.0, 200.0)
    heads, basis = schedules.two_timescales(step, lag=1 / 3, t0=1.0)
    assert basis == step
    t = np.array([0, 1400, 5200])
    # beta_t / alpha_t = (t0 / (t + t0))^(1/3) with the schedule's own t0 = 200: 1, 1/2, 1/3
    np.testing.assert_allclose(basis.values(t) / heads.values(t), [1.0, 0.5, 1 / 3])


@pytest.mark.parametrize(("step", "lag", "match"), [
    (0.1, 0.5, "lag"), (0.1, 0.0, "lag"),
    (schedules.from_callable(lambda t: 1.0), 0.3, "constant or an inverse_time")])
def test_two_timescales_rejects_bad_input(step: object, lag: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schedules.two_timescales(step, lag=lag, t0=10.0)
