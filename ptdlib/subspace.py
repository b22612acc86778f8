"""Subspaces of R^dim: principal angles, distances, the QR retraction and Haar-random bases.

Primer
------
An r-dimensional subspace of R^dim is a point of the Grassmannian Gr(rank, dim); a basis
``B`` (dim, rank) with orthonormal columns (a point of the Stiefel manifold) represents it,
and ``B Q`` for any orthogonal ``Q`` (rank, rank) represents the same subspace.

Principal angles. For orthonormal bases ``B1`` (dim, r1) and ``B2`` (dim, r2) the singular
values of ``B1^T B2`` are the cosines of the principal angles 0 <= theta_1 <= ... <= pi/2
between the spans (Björck & Golub 1973). Computing them as arccos of those singular values
loses all precision for small angles (arccos(1 - eps) = 1.5e-8), so angles below pi/4 come
from the singular values of the residual ``B2 - B1 (B1^T B2)``, their sines (Knyazev & Argentati
2002). This is the algorithm of ``scipy.linalg.subspace_angles``, which we would simply wrap,
but up to at least scipy 1.17 it applies the sine/cosine switch in the wrong order when the
angles straddle pi/4 (it tests the cosines in ascending-angle order against angles in
descending order), so a zero angle next to a large one comes out as ~1e-8; see the
known-defect test in tests/test_subspace.py. ``principal_angles`` applies the same formulas
with the switch aligned.

Distances. With ``B*`` orthonormal, the projection (spectral) distance used throughout ptd is

    dist(B, B*) = ||(I - B* B*^T) B||_2 = sin(theta_max),

and its Frobenius version ||(I - B* B*^T) B||_F = sqrt(sum_j sin^2 theta_j). Both depend only
on the two subspaces, not on the chosen bases (Edelman, Arias & Smith 1998).

Retraction. A step ``B~ = B + G`` leaves the Stiefel manifold; the QR retraction maps it back
to ``Q`` from ``B~ = Q R`` with the signs fixed so that diag(R) > 0, which makes the factors
unique and the map smooth (Absil, Mahony & Sepulchre 2008, Ch. 4). The same sign fix
turns the QR factor of a Gaussian matrix into a Haar-distributed orthonormal basis
(Mezzadri 2007).

References
----------
Björck, Å. & Golub, G. H. (1973). Numerical methods for computing angles between linear
subspaces. Mathematics of Computation 27(123), 579-594.
Edelman, A., Arias, T. A. & Smith, S. T. (1998). The geometry of algorithms with orthogonality
constraints. SIAM J. Matrix Anal. Appl. 20(2), 303-353.
Absil, P.-A., Mahony, R. & Sepulchre, R. (2008). Optimization Algorithms on Matrix Manifolds.
Princeton University Press.
Mezzadri, F. (2007). How to generate random matrices from the classical compact groups.
Notices of the AMS 54(5), 592-604.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ptdlib._validation import (
    FloatArray,
    RngLike,
    as_float_array,
    check_orthonormal,
    check_positive_int,
)


def _orthonormal_span(B: ArrayLike, name: str) -> FloatArray:
    """Orthonormal basis (dim, rank) of span(B) for a finite B of full column rank <= dim."""
    arr = as_float_array(B, name, ndim=2)
    dim, rank = arr.shape
    if rank == 0 or rank > dim:
        raise ValueError(f"{name} must be (dim, rank) with 1 <= rank <= dim; got shape {arr.shape}")
    U, sigma, _ = np.linalg.svd(arr, full_matrices=False)
    # numpy.linalg.matrix_rank's (and scipy.linalg.orth's) rule for the numerical rank.
    numerical_rank = int(np.sum(sigma > sigma[0] * dim * np.finfo(np.float64).eps))
    if numerical_rank < rank:
        raise ValueError(f"{name} must have full column rank {rank}; got numerical rank "
                         f"{numerical_rank}")
    return U


def principal_angles(B1: ArrayLike, B2: ArrayLike) -> FloatArray:
    """Principal angles between span(B1) and span(B2), in radians, largest first.

    Parameters
    ----------
    B1 : (dim, r1) array_like
        Basis of the first subspace (full column rank; need not be orthonormal).
    B2 : (dim, r2) array_like
        Basis of the second subspace (full column rank; need not be orthonormal).

    Returns
    -------
    (min(r1, r2),) ndarray
        Angles in [0, pi/2], in descending order (scipy's order).

    Notes
    -----
    cos theta = sigma(Q1^T Q2), sin theta = sigma(Q2 - Q1 Q1^T Q2) (r1 >= r2); sines below pi/4.

    References
    ----------
    Björck & Golub (1973); Knyazev, A. V. & Argentati, M. E. (2002). Principal angles between
    subspaces in an A-based scalar product. SIAM J. Sci. Comput. 23(6), 2008-2040 — the
    algorithm of ``scipy.linalg.subspace_angles``, with its sine/cosine switch aligned.
    """
    Q1 = _orthonormal_span(B1, "B1")
    Q2 = _orthonormal_span(B2, "B2")
    if Q1.shape[0] != Q2.shape[0]:
        raise ValueError(f"B1 and B2 must have the same number of rows (dim); got shapes "
                         f"{np.shape(B1)} and {np.shape(B2)}")
    if Q1.shape[1] < Q2.shape[1]:
        Q1, Q2 = Q2, Q1
    cross = Q1.T @ Q2
    # Both lists in descending angle order: cosines ascending, sines descending.
    cosines = np.clip(np.linalg.svd(cross, compute_uv=False)[::-1], 0.0, 1.0)
    sines = np.clip(np.linalg.svd(Q2 - Q1 @ cross, compute_uv=False), 0.0, 1.0)
    return np.where(cosines**2 >= 0.5, np.arcsin(sines), np.arccos(cosines))


def principal_angle_distance(B1: ArrayLike, B2: ArrayLike) -> float:
    """Projection distance sin(theta_max) between span(B1) and span(B2).

    Parameters
    ----------
    B1 : (dim, r1) array_like
        Basis of the first subspace.
    B2 : (dim, r2) array_like
        Basis of the second subspace.

    Returns
    -------
    float
        sin of the largest principal angle, in [0, 1].

    Notes
    -----
    dist(B1, B2) = sin(theta_max) = ||(I - Q2 Q2^T) Q1||_2 for orthonormal Q1, Q2 when r1 <= r2.

    References
    ----------
    Edelman, Arias & Smith (1998), the projection 2-norm distance on the Grassmannian.
    """
    return float(np.sin(principal_angles(B1, B2)[0]))


def principal_angle_distance_frobenius(B1: ArrayLike, B2: ArrayLike) -> float:
    """Frobenius projection distance sqrt(sum_j sin^2 theta_j) between span(B1) and span(B2).

    Parameters
    ----------
    B1 : (dim, r1) array_like
        Basis of the first subspace.
    B2 : (dim, r2) array_like
        Basis of the second subspace.

    Returns
    -------
    float
        In [0, sqrt(min(r1, r2))].

    Notes
    -----
    dist_F(B1, B2) = ||sin theta||_2 = ||(I - Q2 Q2^T) Q1||_F for orthonormal Q1, Q2, r1 <= r2.

    References
    ----------
    Edelman, Arias & Smith (1998), the projection F-norm distance on the Grassmannian.
    """
    return float(np.linalg.norm(np.sin(principal_angles(B1, B2))))


def subspace_distances(B: ArrayLike, B_star: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Spectral and Frobenius distances of many orthonormal bases ``B`` to ``B_star``.

    The fast path for recording a run, and the very routine the simulator's records use
    (`ptdlib._kernels.basis_distances`: compiled loops without BLAS or LAPACK, so the same bits
    on every machine). It trusts that every ``B[...]`` has orthonormal columns (as the QR
    retraction guarantees) and does not check it; ``B_star`` is checked. For
    orthonormal inputs of equal rank the results equal ``principal_angle_distance`` and
    ``principal_angle_distance_frobenius``: the singular values of the residual are the sines
    of the principal angles, so small distances keep full precision.

    Parameters
    ----------
    B : (..., dim, rank) array_like
        Orthonormal bases, any leading batch axes (e.g. (seeds, dim, rank)).
    B_star : (dim, rank) array_like
        Orthonormal reference basis.

    Returns
    -------
    spectral : (...) ndarray
        ||(I - B* B*^T) B||_2 = sin(theta_max) per basis.
    frobenius : (...) ndarray
        ||(I - B* B*^T) B||_F = sqrt(sum_j sin^2 theta_j) per basis.

    Notes
    -----
    residual = B - B* (B*^T B); spectral = sigma_max(residual), frobenius = ||residual||_F.

    References
    ----------
    Edelman, Arias & Smith (1998); Björck & Golub (1973).
    """
    B_star = check_orthonormal(B_star, "B_star")
    B = as_float_array(B, "B")
    if B.ndim < 2 or B.shape[-2:] != B_star.shape:
        raise ValueError(f"B must have shape (..., {B_star.shape[0]}, {B_star.shape[1]}) to match "
                         f"B_star; got {B.shape}")
    from ptdlib import _kernels  # numba loads only where distances are batched

    batch = B.shape[:-2]
    out = np.full((2, 1, int(np.prod(batch, dtype=np.int64))), np.nan)
    _kernels.snapshot_distances(np.ascontiguousarray(B).reshape(1, -1, *B_star.shape),
                                np.ascontiguousarray(B_star), _kernels.BASIS, out)
    return out[0, 0].reshape(batch), out[1, 0].reshape(batch)


def _sign_fixed_qr(M: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Reduced QR of a stack (..., dim, rank) with diag(R) made non-negative."""
    Q, R = np.linalg.qr(M)
    # Where R_jj == 0 the sign is irrelevant (the caller rejects it); keep +1 so nothing is zeroed.
    signs = np.where(np.diagonal(R, axis1=-2, axis2=-1) < 0, -1.0, 1.0)
    return Q * signs[..., None, :], R * signs[..., :, None]


def _stiefel_candidate(B_tilde: ArrayLike) -> FloatArray:
    """``B_tilde`` as a float array of shape (..., dim, rank) with 1 <= rank <= dim, the input
    of a retraction; ValueError otherwise."""
    M = as_float_array(B_tilde, "B_tilde")
    if M.ndim < 2 or M.shape[-1] == 0 or M.shape[-1] > M.shape[-2]:
        raise ValueError(f"B_tilde must have shape (..., dim, rank) with 1 <= rank <= dim; "
                         f"got {M.shape}")
    return M


def qr_retraction(B_tilde: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """QR retraction onto the Stiefel manifold: ``B~ = Q R`` with diag(R) > 0.

    Parameters
    ----------
    B_tilde : (..., dim, rank) array_like
        Matrices of full column rank, any leading batch axes.

    Returns
    -------
    Q : (..., dim, rank) ndarray
        Orthonormal columns, Q^T Q = I; the retracted basis.
    R : (..., rank, rank) ndarray
        Upper triangular with positive diagonal; R = I when ``B_tilde`` is already orthonormal.

    Raises
    ------
    ValueError
        If some ``B_tilde[...]`` is numerically rank-deficient: |R_jj| <= dim * eps * max_k |R_kk|.

    Notes
    -----
    B_{t+1} = qf(B~_{t+1}), the Q factor of the unique QR factorisation with diag(R) > 0.

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Ch. 4 (the qf retraction on the Stiefel manifold).
    """
    M = _stiefel_candidate(B_tilde)
    Q, R = _sign_fixed_qr(M)
    diag = np.diagonal(R, axis1=-2, axis2=-1)
    # Relative test: a column dependent on the previous ones leaves |R_jj| at round-off level.
    threshold = M.shape[-2] * np.finfo(np.float64).eps * np.max(diag, axis=-1, keepdims=True)
    deficient = diag <= threshold
    if np.any(deficient):
        index = np.unravel_index(np.argmin(np.where(deficient, diag, np.inf)), diag.shape)
        raise ValueError(f"B_tilde must have full column rank; smallest diag(R) entry is "
                         f"{diag[index]:.3g} at index {tuple(int(i) for i in index)}, at or below "
                         f"dim * eps * max_j |R_jj| = "
                         f"{np.broadcast_to(threshold, diag.shape)[index]:.3g}")
    return Q, R


def polar_retraction(B_tilde: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Polar retraction onto the Stiefel manifold: the orthonormal factor of ``B~ = U S V^T``.

    Parameters
    ----------
    B_tilde : (..., dim, rank) array_like
        Matrices of full column rank, any leading batch axes.

    Returns
    -------
    B : (..., dim, rank) ndarray
        U V^T: orthonormal columns, the orthonormal matrix nearest to ``B_tilde`` (in every
        unitarily invariant norm).
    H : (..., rank, rank) ndarray
        V S V^T, symmetric positive definite, with B~ = B H; H = I when ``B_tilde`` is already
        orthonormal.

    Raises
    ------
    ValueError
        If some ``B_tilde[...]`` is numerically rank-deficient: s_min <= dim * eps * s_max (the
        rule of `qr_retraction`, on the singular values).

    Notes
    -----
    B_{t+1} = B~ (B~^T B~)^(-1/2) = U V^T.

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Ch. 4 (the polar retraction on the Stiefel manifold);
    Higham, N. J. (1986). Computing the polar decomposition, with applications. SIAM J. Sci.
    Stat. Comput. 7(4).
    """
    M = _stiefel_candidate(B_tilde)
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    threshold = M.shape[-2] * np.finfo(np.float64).eps * s[..., :1]
    deficient = s[..., -1:] <= threshold
    if np.any(deficient):
        index = tuple(int(i) for i in np.argwhere(deficient)[0][:-1])
        raise ValueError(f"B_tilde must have full column rank; smallest singular value is "
                         f"{s[index][-1]:.3g} at index {index}, at or below dim * eps * s_max = "
                         f"{threshold[index][0]:.3g}")
    V = np.swapaxes(Vt, -1, -2)
    return U @ Vt, (V * s[..., None, :]) @ Vt


def qr_retraction_differential(B: ArrayLike, E: ArrayLike) -> FloatArray:
    """Differential of the QR retraction at an orthonormal B in the direction E.

    Parameters
    ----------
    B : (dim, rank)
        Orthonormal basis (the point of the Stiefel manifold).
    E : (dim, rank)
        Ambient direction.

    Returns
    -------
    (dim, rank) ndarray
        d/dt qf(B + t E) at t = 0: (I - B B^T) E + B S, S = L - L^T, L the strictly lower
        triangular part of B^T E (a tangent vector: B^T of it is skew).

    Notes
    -----
    From B + t E = Q(t) R(t), R(0) = I: Q' + B R' = E with R' upper triangular and B^T Q'
    skew, so B^T E = B^T Q' + R' fixes both.

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Ch. 4 (the qf retraction); the differential follows by
    differentiating B + t E = Q(t) R(t) as in the Notes.
    """
    B = check_orthonormal(B, "B")
    E = as_float_array(E, "E")
    if E.shape != B.shape:
        raise ValueError(f"E must have the shape of B, {B.shape}; got {E.shape}")
    lower = np.tril(B.T @ E, -1)
    return E - B @ (B.T @ E) + B @ (lower - lower.T)


def haar_orthonormal(dim: int, rank: int, rng: RngLike,
                     size: int | tuple[int, ...] = ()) -> FloatArray:
    """Haar-random orthonormal bases: the sign-fixed QR factor of a standard Gaussian matrix.

    Parameters
    ----------
    dim : int
        Ambient dimension, >= rank.
    rank : int
        Number of columns, >= 1.
    rng : int, SeedSequence, Generator or None
        Normalised with ``np.random.default_rng``.
    size : int or tuple of int, optional
        Leading batch shape; default () returns one (dim, rank) basis.

    Returns
    -------
    (*size, dim, rank) ndarray
        Orthonormal columns; span uniform on the Grassmannian, basis uniform on the Stiefel
        manifold.

    Notes
    -----
    B = Q diag(sign(diag R)) with G = Q R, G_ij ~ N(0, 1) i.i.d.: the Q factor with diag R > 0,
    computed by modified Gram-Schmidt (`ptdlib._kernels.orthonormal_factor`).

    References
    ----------
    Mezzadri (2007): without the sign fix the QR factor is not Haar-distributed.
    """
    dim = check_positive_int(dim, "dim")
    rank = check_positive_int(rank, "rank")
    if rank > dim:
        raise ValueError(f"rank must be <= dim; got rank={rank}, dim={dim}")
    batch = (size,) if isinstance(size, int | np.integer) else size
    if not isinstance(batch, tuple) or any(
            isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0 for s in batch):
        raise ValueError(f"size must be a non-negative int or a tuple of them; got {size!r}")
    from ptdlib import _kernels  # numba loads only when a basis is drawn (as for distances)

    G = np.random.default_rng(rng).standard_normal((*batch, dim, rank))
    # The compiled Gram-Schmidt QR, not LAPACK's: the same bits on every machine.
    return _kernels.orthonormal_factor(G.reshape(-1, dim, rank)).reshape(G.shape)
