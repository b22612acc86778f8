"""Shared types and boundary validation for ptdlib's public functions.

Public functions validate their inputs here and raise ``ValueError`` messages that name the
argument, the rule it broke and what was received; private helpers trust their inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
RngLike = int | np.random.SeedSequence | np.random.Generator | None

#: Absolute tolerance on row sums and orthonormality, stated in every error that uses it.
STOCHASTIC_ATOL = 1e-10
ORTHONORMAL_ATOL = 1e-8


def as_float_array(x: ArrayLike, name: str, ndim: int | None = None) -> FloatArray:
    """Return ``x`` as a finite float64 array, checking its number of dimensions."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got NaN or inf at index "
                         f"{tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])}")
    return arr


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def check_choice(value: Any, name: str, options: Sequence[str]) -> str:
    """Return ``value`` after checking it is one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def check_in_range(value: Any, name: str, low: float, high: float,
                   *, low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float, raising unless it lies in the stated interval."""
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number; got {value!r}") from exc
    below = x <= low if low_open else x < low
    above = x >= high if high_open else x > high
    if not np.isfinite(x) or below or above:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    return x


def check_row_stochastic(P: ArrayLike, name: str = "P") -> FloatArray:
    """Return ``P`` (..., n, n) as float64 after checking it is square, non-negative, rows sum to 1.

    Row sums must equal 1 within ``STOCHASTIC_ATOL`` = 1e-10.
    """
    arr = as_float_array(P, name)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] == 0:
        raise ValueError(
            f"{name} must be a square matrix (or a stack of them); got shape {arr.shape}")
    if np.any(arr < 0):
        idx = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative; got {arr[idx]:.3g} at index {idx}")
    row_error = np.abs(arr.sum(axis=-1) - 1.0)
    if np.any(row_error > STOCHASTIC_ATOL):
        idx = tuple(int(i) for i in np.argwhere(row_error > STOCHASTIC_ATOL)[0])
        raise ValueError(
            f"{name} must be row-stochastic (rows sum to 1 within {STOCHASTIC_ATOL:g});"
            f" row {idx} sums to {arr.sum(axis=-1)[idx]:.12g}")
    return arr


def check_orthonormal(B: ArrayLike, name: str = "B") -> FloatArray:
    """Return ``B`` (dim, rank) as float64 after checking B^T B = I within ``ORTHONORMAL_ATOL``."""
    arr = as_float_array(B, name, ndim=2)
    dim, rank = arr.shape
    if rank == 0 or rank > dim:
        raise ValueError(f"{name} must be (dim, rank) with 1 <= rank <= dim; got shape {arr.shape}")
    gram_error = float(np.max(np.abs(arr.T @ arr - np.eye(rank))))
    if gram_error > ORTHONORMAL_ATOL:
        raise ValueError(f"{name} must have orthonormal columns (max |B^T B - I| <= "
                         f"{ORTHONORMAL_ATOL:g}); got {gram_error:.3g}")
    return arr
