"""Step-size schedules alpha_t for the single-timescale updates.

Primer
------
Every update of the algorithm (gain, heads, representation) moves by a multiple of ONE step
size alpha_t: the gain by c_eta alpha_t, the heads by alpha_t, the representation by c_B alpha_t
(docs/algorithm.md, single timescale). The basis may instead follow a schedule of its own, beta_t
(``representation_step_size`` of `ptdlib.simulate.run`; two timescales when beta_t / alpha_t ->
0). Time is the 0-based iteration index: iteration t = 0, 1, ... uses alpha_t and produces the
iterate after t + 1 steps.

- constant:     alpha_t = alpha                      (a floor proportional to alpha remains)
- inverse time: alpha_t = alpha_0 / (t + t_0)        (sum alpha_t = inf, sum alpha_t^2 < inf)
- polynomial:   alpha_t = alpha_0 / (t + t_0)^p      (1/2 < p <= 1: the same two sums; p < 1
                                                      decays more slowly than inverse time)
- any callable t -> alpha_t, wrapped by `from_callable`.

A schedule is a small frozen record; ``schedule(t)`` gives one value and ``schedule.values(t)``
a whole array (the simulator evaluates a chunk of steps at once). Every value is checked:
alpha_t must be finite and > 0, and the error names the first offending step.

References
----------
Robbins, H. & Monro, S. (1951). A stochastic approximation method. Ann. Math. Statist. 22(3).
Srikant, R. & Ying, L. (2019). Finite-time error bounds for linear stochastic approximation and
TD learning. COLT (constant and diminishing steps for Markovian TD).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from ptdlib._validation import FloatArray, check_in_range

__all__ = ["Schedule", "as_schedule", "constant", "from_callable", "inverse_time", "polynomial",
           "two_timescales"]


def _checked(alpha: FloatArray, t: np.ndarray, source: str, name: str, symbol: str) -> FloatArray:
    """Return ``alpha`` after checking every entry is finite and > 0 (errors name ``name``)."""
    flat_alpha, flat_t = alpha.ravel(), t.ravel()
    bad = ~(np.isfinite(flat_alpha) & (flat_alpha > 0))
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite and > 0 at every step; {source} gives "
                         f"{symbol} = {float(flat_alpha[k])!r} at t = {int(flat_t[k])}")
    return alpha


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A step-size schedule t -> alpha_t (use `constant`, `inverse_time`, `polynomial` or
    `from_callable`).

    Parameters
    ----------
    kind : str
        "constant", "inverse_time", "polynomial" or "callable"; fixes how the remaining fields
        are read.
    alpha0 : float
        alpha for "constant", alpha_0 for "inverse_time" and "polynomial" (unused for
        "callable").
    t0 : float
        t_0 of "inverse_time" and "polynomial" (unused otherwise).
    power : float
        The exponent p of "polynomial" (unused otherwise).
    fn : callable or None
        The wrapped function of "callable".
    vectorized : bool
        Whether ``fn`` accepts an integer array of steps and returns an array of that shape.
    """

    kind: str
    alpha0: float = 1.0
    t0: float = 1.0
    power: float = 1.0
    fn: Callable[..., ArrayLike] | None = None
    vectorized: bool = False

    def values(self, t: ArrayLike, *, name: str = "step_size",
               symbol: str = "alpha_t") -> FloatArray:
        """Step sizes alpha_t at the 0-based steps ``t`` (any shape), validated finite and > 0.

        ``name`` and ``symbol`` are what an error calls the schedule and its value (the
        simulator's basis schedule is ``representation_step_size``, beta_t).
        """
        t = np.asarray(t, dtype=np.int64)
        if self.kind == "constant":
            alpha = np.full(t.shape, self.alpha0)
        elif self.kind == "inverse_time":
            alpha = self.alpha0 / (t + self.t0)
        elif self.kind == "polynomial":
            alpha = self.alpha0 / (t + self.t0) ** self.power
        elif self.vectorized:
            alpha = np.broadcast_to(np.asarray(self.fn(t), dtype=np.float64), t.shape).copy()
        else:
            flat = [float(self.fn(int(k))) for k in t.ravel()]
            alpha = np.asarray(flat, dtype=np.float64).reshape(t.shape)
        return _checked(alpha, t, repr(self), name, symbol)

    def __call__(self, t: int) -> float:
        """Step size alpha_t at the 0-based step ``t``."""
        return float(self.values(np.asarray([t]))[0])

    def __repr__(self) -> str:
        if self.kind == "constant":
            return f"constant({self.alpha0!r})"
        if self.kind == "inverse_time":
            return f"inverse_time({self.alpha0!r}, t0={self.t0!r})"
        if self.kind == "polynomial":
            return f"polynomial({self.alpha0!r}, t0={self.t0!r}, power={self.power!r})"
        return f"from_callable({getattr(self.fn, '__name__', repr(self.fn))})"


def constant(alpha: float) -> Schedule:
    """Constant step size.

    Parameters
    ----------
    alpha : float
        The step size, finite and > 0.

    Returns
    -------
    Schedule

    Notes
    -----
    alpha_t = alpha for every t.
    """
    return Schedule("constant", alpha0=check_in_range(alpha, "alpha", 0.0, np.inf,
                                                      low_open=True, high_open=True))


def inverse_time(alpha0: float, t0: float = 1.0) -> Schedule:
    """Diminishing step size alpha_0 / (t + t_0).

    Parameters
    ----------
    alpha0 : float
        Numerator alpha_0, finite and > 0.
    t0 : float, optional
        Offset t_0 > 0 (default 1): alpha_0 / t_0 is the first step size.

    Returns
    -------
    Schedule

    Notes
    -----
    alpha_t = alpha_0 / (t + t_0), t = 0, 1, 2, ...

    References
    ----------
    Robbins & Monro (1951); Srikant & Ying (2019), Theorem 7 (the 1/t rate needs alpha_0 large
    enough relative to the negative-definiteness margin).
    """
    alpha0 = check_in_range(alpha0, "alpha0", 0.0, np.inf, low_open=True, high_open=True)
    t0 = check_in_range(t0, "t0", 0.0, np.inf, low_open=True, high_open=True)
    return Schedule("inverse_time", alpha0=alpha0, t0=t0)


def polynomial(alpha0: float, t0: float = 1.0, power: float = 1.0) -> Schedule:
    """Polynomially diminishing step size alpha_0 / (t + t_0)^p.

    Parameters
    ----------
    alpha0 : float
        Numerator alpha_0, finite and > 0.
    t0 : float, optional
        Offset t_0 > 0 (default 1): alpha_0 / t_0^p is the first step size.
    power : float, optional
        Exponent p in (0, 1] (default 1, `inverse_time`). Robbins and Monro's conditions
        (sum alpha_t = inf, sum alpha_t^2 < inf) hold for 1/2 < p <= 1.

    Returns
    -------
    Schedule

    Notes
    -----
    alpha_t = alpha_0 / (t + t_0)^p. Two schedules with powers p_fast < p_slow give two
    timescales: their ratio falls like t^(p_fast - p_slow) (Borkar 2008, Ch. 6).

    References
    ----------
    Borkar, V. S. (2008). Stochastic Approximation: A Dynamical Systems Viewpoint. Cambridge.
    """
    alpha0 = check_in_range(alpha0, "alpha0", 0.0, np.inf, low_open=True, high_open=True)
    t0 = check_in_range(t0, "t0", 0.0, np.inf, low_open=True, high_open=True)
    power = check_in_range(power, "power", 0.0, 1.0, low_open=True)
    return Schedule("polynomial", alpha0=alpha0, t0=t0, power=power)


def two_timescales(step_size: float | Schedule, *, lag: float,
                   t0: float) -> tuple[Schedule, Schedule]:
    """The heads' and the basis' schedules of a two-timescale reading of a single-timescale step.

    Parameters
    ----------
    step_size : float or Schedule
        The single-timescale step: a constant alpha, or an `inverse_time` schedule.
    lag : float
        The exponent lambda in (0, 1/2) of beta_t / alpha_t = (t_0 / (t + t_0))^lambda.
    t0 : float
        The offset t_0 > 0 of that ratio for a constant step (an inverse-time step uses its own).

    Returns
    -------
    (Schedule, Schedule)
        (alpha_t, beta_t): the heads' and the basis' schedules, beta_0 = alpha_0 = the first
        step of ``step_size``.

    Notes
    -----
    Constant alpha: alpha_t = alpha and beta_t = alpha (t_0 / (t + t_0))^lambda, so the basis
    slows down while the heads keep their step. Inverse time alpha_0 / (t + t_0): the basis
    keeps it, beta_t = alpha_0 / (t + t_0), and the heads take the slower-decaying
    alpha_t = alpha_0 t_0^(-lambda) / (t + t_0)^(1 - lambda). Either way beta_t / alpha_t =
    (t_0 / (t + t_0))^lambda -> 0, both schedules sum to infinity, and lambda < 1/2 keeps the
    heads' schedule square-summable for an inverse-time step (Borkar 2008, Ch. 6).

    References
    ----------
    Borkar, V. S. (2008). Stochastic Approximation: A Dynamical Systems Viewpoint. Cambridge.
    """
    lag = check_in_range(lag, "lag", 0.0, 0.5, low_open=True, high_open=True)
    schedule = as_schedule(step_size)
    if schedule.kind == "constant":
        t0 = check_in_range(t0, "t0", 0.0, np.inf, low_open=True, high_open=True)
        return schedule, polynomial(schedule.alpha0 * t0**lag, t0, lag)
    if schedule.kind == "inverse_time":
        heads = polynomial(schedule.alpha0 * schedule.t0**-lag, schedule.t0, 1.0 - lag)
        return heads, schedule
    raise ValueError(f"step_size must be a constant or an inverse_time schedule; got "
                     f"{schedule!r}")


def from_callable(fn: Callable[..., ArrayLike], *, vectorized: bool = False) -> Schedule:
    """Wrap any function t -> alpha_t as a schedule.

    Parameters
    ----------
    fn : callable
        ``fn(t)`` returns alpha_t for the 0-based step t; every value must be finite and > 0
        (checked whenever values are requested, naming the first bad step).
    vectorized : bool, optional
        If True, ``fn`` is called once with an integer array of steps and must return an array
        of the same shape (or a scalar); if False (default), it is called once per step with a
        Python int, which is slower for long runs.

    Returns
    -------
    Schedule

    Notes
    -----
    alpha_t = fn(t).
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable; got {type(fn).__name__}")
    return Schedule("callable", fn=fn, vectorized=bool(vectorized))


def as_schedule(step_size: float | Schedule | Callable[[int], float], *,
                name: str = "step_size") -> Schedule:
    """Normalise a step-size argument: a number (constant), a `Schedule`, or a callable.

    Parameters
    ----------
    step_size : float, Schedule or callable
        A positive finite number means `constant`; a plain callable is wrapped by
        `from_callable` (called once per step).
    name : str, optional
        The argument's name in error messages (default "step_size").

    Returns
    -------
    Schedule
    """
    if isinstance(step_size, Schedule):
        return step_size
    if callable(step_size):
        return from_callable(step_size)
    if isinstance(step_size, bool) or not isinstance(step_size, int | float | np.number):
        raise ValueError(f"{name} must be a positive number, a Schedule or a callable; "
                         f"got {type(step_size).__name__}")
    return Schedule("constant", alpha0=check_in_range(step_size, name, 0.0, np.inf,
                                                      low_open=True, high_open=True))
