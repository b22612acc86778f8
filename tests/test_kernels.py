"""The compiled linear algebra and sampling tables of ptdlib._kernels against numpy/scipy.

These routines replace LAPACK in the simulator's data path so that results do not depend on the
CPU (tests/test_foreign_machine.py); here they are checked against the library answers they
replace, to round-off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import _kernels as kern
from ptdlib import markov, simulate, subspace

#: Round-off allowance for O(dim) products and Jacobi rotations on O(1) matrices.
TOL = 1e-12


def _law(prob: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The distribution an alias row encodes: (prob_k + sum_{j: alias_j = k} (1 - prob_j)) / n."""
    n = prob.size
    law = prob.copy()
    np.add.at(law, alias, 1.0 - prob)
    return law / n


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0.0, 0.9))
def test_alias_rows_encode_each_row_exactly(n: int, seed: int, sparsity: float) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random((5, n)) ** 3
    p[rng.random((5, n)) < sparsity] = 0.0
    p[:, 0] += 1e-3  # no empty row
    p /= p.sum(axis=1, keepdims=True)
    prob, alias = np.empty_like(p), np.empty(p.shape, dtype=np.int64)
    kern.alias_rows(p, prob, alias)
    for row in range(p.shape[0]):
        np.testing.assert_allclose(_law(prob[row], alias[row]), p[row], rtol=0, atol=TOL)
        assert np.all(prob[row][p[row] == 0.0] == 0.0)  # a zero-probability state never sampled
        assert not np.isin(np.flatnonzero(p[row] == 0.0), alias[row][prob[row] < 1]).any()


@pytest.mark.parametrize(("row", "prob", "alias"), [
    # q = (1, 2, 1, 0): heavy 0 pays light 3's deficit in full and is demoted to prob 0
    ([0.25, 0.5, 0.25, 0.0], [0.0, 1.0, 1.0, 0.0], [1, 1, 2, 0]),
    ([1.0], [1.0], [0]),
    ([0.5, 0.5], [1.0, 1.0], [0, 1]),
    ([0.0, 1.0], [0.0, 1.0], [1, 1]),
])
def test_alias_rows_known_answers(row: list[float], prob: list[float], alias: list[int]) -> None:
    p = np.array([row])
    got_prob, got_alias = np.empty_like(p), np.empty(p.shape, dtype=np.int64)
    kern.alias_rows(p, got_prob, got_alias)
    np.testing.assert_array_equal(got_prob[0], prob)
    np.testing.assert_array_equal(got_alias[0], alias)


def test_alias_rows_write_into_a_packed_float_table_as_into_separate_arrays() -> None:
    P = np.random.default_rng(0).dirichlet(np.ones(7), size=7)
    tables = markov.alias_tables(P)
    packed = simulate._packed_tables(P[None])
    np.testing.assert_array_equal(packed[0, ..., 0], tables.prob[0])
    np.testing.assert_array_equal(packed[0, ..., 1], tables.alias[0])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_symmetric_eigen_matches_numpy(m: int, seed: int) -> None:
    X = np.random.default_rng(seed).standard_normal((m, m))
    G = X + X.T
    values, vectors = np.empty(m), np.empty((m, m))
    kern.symmetric_eigen(G, values, vectors)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(G)[::-1], rtol=0, atol=TOL * m)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(m), atol=TOL * m)
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, G, atol=TOL * m)


def test_symmetric_eigen_of_a_diagonal_matrix_sorts_it() -> None:
    values, vectors = np.empty(3), np.empty((3, 3))
    kern.symmetric_eigen(np.diag([1.0, 3.0, 2.0]), values, vectors)
    np.testing.assert_array_equal(values, [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(np.abs(vectors), np.eye(3)[:, [1, 2, 0]])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**32 - 1), st.data())
def test_basis_distances_equal_the_principal_angle_distances(dim: int, seed: int,
                                                               data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, dim))
    rng = np.random.default_rng(seed)
    B, B_star = (subspace.haar_orthonormal(dim, rank, rng) for _ in range(2))
    out = np.empty(2)
    kern.basis_distances(B, B_star, out)
    assert out[0] == pytest.approx(subspace.principal_angle_distance(B, B_star), abs=TOL)
    assert out[1] == pytest.approx(subspace.principal_angle_distance_frobenius(B, B_star),
                                   abs=TOL)


def test_snapshot_distances_skip_what_is_undefined() -> None:
    """Undefined distances leave ``out`` as it was (simulate fills it with NaN first)."""
    B_star = np.eye(4)[:, :2]
    out = np.full((2, 1, 3), -1.0)
    snapshots = np.zeros((1, 3, 4, 4))
    snapshots[0, 0] = np.diag([1.0, 0.0, 0.0, 0.0])  # rank 1 < r: top-2 span undefined
    snapshots[0, 1] = np.diag([0.0, 0.0, 2.0, 1.0])  # top-2 span orthogonal to B*
    snapshots[0, 2, 0, 0] = np.nan
    kern.snapshot_distances(snapshots, B_star, kern.GRAM, out)
    assert out[:, 0, 0].tolist() == out[:, 0, 2].tolist() == [-1.0, -1.0]
    np.testing.assert_allclose(out[:, 0, 1], [1.0, np.sqrt(2.0)], atol=TOL)
    mean = np.zeros((1, 2, 4, 1))
    mean[0, 1, :, 0] = [1.0, 0.0, 1.0, 0.0]  # 45 degrees from span(B*)
    out = np.full((2, 1, 2), -1.0)
    kern.snapshot_distances(mean, B_star, kern.MEAN, out)
    assert out[:, 0, 0].tolist() == [-1.0, -1.0]  # the zero vector has no direction
    np.testing.assert_allclose(out[:, 0, 1], [np.sqrt(0.5)] * 2, atol=TOL)


@pytest.mark.parametrize(("dim", "rank", "seed"), [(5, 2, 0), (32, 4, 7), (3, 3, 1)])
def test_haar_orthonormal_is_the_sign_fixed_lapack_qr_factor(dim: int, rank: int,
                                                             seed: int) -> None:
    B = subspace.haar_orthonormal(dim, rank, seed, size=2)
    G = np.random.default_rng(seed).standard_normal((2, dim, rank))
    Q, R = np.linalg.qr(G)
    reference = Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[:, None, :]
    np.testing.assert_allclose(B, reference, atol=TOL)  # same draws, same sign-fixed Q


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9),
       st.integers(0, 2**32 - 1))
def test_matmul_matches_numpy(batch: int, m: int, inner: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((batch, m, inner)), rng.standard_normal((batch, inner, n))
    np.testing.assert_allclose(kern.matmul(A, B), A @ B, atol=TOL)
    np.testing.assert_allclose(kern.matmul(A[0], B[0]), A[0] @ B[0], atol=TOL)
    # Transposed (non-contiguous) operands are copied, not misread.
    np.testing.assert_allclose(kern.matmul(B[0].T, A[0].T), B[0].T @ A[0].T, atol=TOL)


@pytest.mark.parametrize(("a", "b"), [((2, 3), (4, 2)), ((2, 3), (2, 3, 1)), ((2, 2, 3), (3, 3, 1)),
                                      ((3,), (3,))])
def test_matmul_rejects_mismatched_shapes(a: tuple, b: tuple) -> None:
    with pytest.raises(ValueError, match="matmul needs"):
        kern.matmul(np.ones(a), np.ones(b))


def test_orthonormal_factor_rejects_a_rank_deficient_matrix() -> None:
    G = np.ones((1, 5, 2))
    with pytest.raises(ValueError, match="rank deficient"):
        kern.orthonormal_factor(G)


def test_qr_retract_matches_the_sign_fixed_qr_retraction() -> None:
    B_tilde = np.random.default_rng(3).standard_normal((9, 3))
    Q, R = subspace.qr_retraction(B_tilde)
    BT, R_kernel = B_tilde.T.copy(), np.empty((3, 3))
    assert kern.qr_retract(BT, R_kernel)
    np.testing.assert_allclose(BT.T, Q, atol=TOL)
    np.testing.assert_allclose(R_kernel, R, atol=TOL)
    deficient = np.column_stack([B_tilde[:, 0], 2 * B_tilde[:, 0]]).T.copy()
    assert not kern.qr_retract(deficient, np.empty((2, 2)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**32 - 1), st.sampled_from([1e-3, 1.0, 1e3]),
       st.data())
def test_polar_retract_matches_the_polar_retraction(dim: int, seed: int, scale: float,
                                                    data: st.DataObject) -> None:
    rank = data.draw(st.integers(1, dim))
    rng = np.random.default_rng(seed)
    # an orthonormal basis plus a step of every size: near-orthonormal to far from it
    B_tilde = subspace.haar_orthonormal(dim, rank, rng) + scale * rng.standard_normal((dim, rank))
    B, H = subspace.polar_retraction(B_tilde)
    BT, H_kernel = B_tilde.T.copy(), np.empty((rank, rank))  # a copy even when rank = 1
    assert kern.polar_retract(BT, H_kernel)
    # Jacobi and LAPACK's SVD are both backward stable (errors eps ||B~|| in B~), so the
    # orthonormal factors agree to ~eps cond(B~) and H = V S V^T to ~eps cond(B~) ||B~||; 1e-13
    # leaves a factor ~500 for the O(dim) accumulation.
    cond = np.linalg.cond(B_tilde)
    np.testing.assert_allclose(BT.T, B, rtol=0, atol=1e-13 * cond)
    np.testing.assert_allclose(H_kernel, H, rtol=0,
                               atol=1e-13 * cond * np.linalg.norm(B_tilde, 2))


def test_polar_retract_reports_rank_deficiency_and_non_finite_input() -> None:
    column = np.random.default_rng(5).standard_normal(6)
    deficient = np.stack([column, -3.0 * column, np.zeros(6)])
    assert not kern.polar_retract(deficient, np.empty((3, 3)))
    assert not kern.polar_retract(np.full((2, 6), np.nan), np.empty((2, 2)))
