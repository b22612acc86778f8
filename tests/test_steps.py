"""Tests for ptdlib.steps: each equation by hand, invariants, broadcasting over (seeds, agents)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import markov, steps, subspace, td


def _orthonormal(dim: int, rank: int, seed: int) -> np.ndarray:
    return subspace.haar_orthonormal(dim, rank, seed)


@st.composite
def step_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], int, int, int]:
    """(batch, n_agents, dim, rank): 0-2 leading batch axes (seeds, ...), 1 <= rank <= dim."""
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    dim = draw(st.integers(1, 6))
    return batch, draw(st.integers(1, 4)), dim, draw(st.integers(1, dim))


# ------------------------------------------------------------------ known answers, one by one

def test_td_error_by_hand() -> None:
    # delta = 1.5 - 0.5 + ((0, 1) - (1, 0)) . (2, 3) = 1 + (-2 + 3) = 2
    assert steps.td_error(1.5, 0.5, np.array([1.0, 0.0]), np.array([0.0, 1.0]),
                          np.array([2.0, 3.0])) == pytest.approx(2.0, abs=1e-15)


def test_shared_parameter_and_td_direction_by_hand() -> None:
    B = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(steps.shared_parameter(B, np.array([2.0, -1.0])), [2, -1, 0])
    np.testing.assert_array_equal(steps.td_direction(0.5, np.array([2.0, 4.0])), [1.0, 2.0])


def test_gain_step_by_hand() -> None:
    # eta + c_eta alpha (r - eta) = 1 + 0.5 * 0.2 * (3 - 1) = 1.2
    assert steps.gain_step(1.0, 3.0, 0.2, c_eta=0.5) == pytest.approx(1.2, abs=1e-15)
    assert steps.gain_step(1.0, 3.0, 0.2) == pytest.approx(1.4, abs=1e-15)


def test_differential_gain_step_by_hand() -> None:
    # eta + c_eta alpha delta = 1 + 0.5 * 0.2 * (-3) = 0.7
    assert steps.differential_gain_step(1.0, -3.0, 0.2, c_eta=0.5) == pytest.approx(0.7, abs=1e-15)
    np.testing.assert_allclose(steps.differential_gain_step(np.array([1.0, 0.0]),
                                                            np.array([2.0, -1.0]), 0.1),
                               [1.2, -0.1], rtol=0, atol=1e-15)


def test_head_projection_by_hand() -> None:
    # ||(3, 4)|| = 5 > 2.5: scaled by 2.5 / 5 to (1.5, 2); (0.3, 0.4) and 0 are inside
    w = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    out = steps.head_projection(w, 2.5)
    np.testing.assert_allclose(out[0], [1.5, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out[1:], w[1:])  # inside the ball: the same bits
    batch = np.random.default_rng(3).standard_normal((2, 5, 3))
    norms = np.linalg.norm(steps.head_projection(batch, 0.8), axis=-1)
    np.testing.assert_allclose(norms, np.minimum(np.linalg.norm(batch, axis=-1), 0.8),
                               rtol=1e-14)


def test_heads_first_gradient_by_hand() -> None:
    # theta' = B w' = (1, 2, 0); delta' = 1.5 - 0.5 + ((0, 1, 0) - (1, 0, 0)) . theta' = 2;
    # G = delta' phi(s) w'^T = 2 (1, 0, 0)^T (1, 2)
    B = np.eye(3)[:, :2]
    G = steps.heads_first_gradient(1.5, 0.5, np.array([1.0, 0.0, 0.0]),
                                   np.array([0.0, 1.0, 0.0]), B, np.array([1.0, 2.0]))
    np.testing.assert_allclose(G, [[2.0, 4.0], [0.0, 0.0], [0.0, 0.0]], rtol=0, atol=1e-15)


def test_heads_first_gradient_is_the_simultaneous_one_at_the_new_head() -> None:
    rng = np.random.default_rng(4)
    B, w, phi, phi1 = _orthonormal(5, 2, 6), rng.standard_normal(2), *rng.standard_normal((2, 5))
    delta = steps.td_error(0.7, 0.2, phi, phi1, steps.shared_parameter(B, w))
    np.testing.assert_allclose(
        steps.heads_first_gradient(0.7, 0.2, phi, phi1, B, w),
        steps.representation_gradient(steps.td_direction(delta, phi), w), rtol=0, atol=1e-15)


def test_head_step_is_w_plus_alpha_delta_Bt_phi() -> None:
    rng = np.random.default_rng(0)
    B, w, phi = _orthonormal(5, 2, 1), rng.standard_normal(2), rng.standard_normal(5)
    delta, alpha = 0.7, 0.1
    z = steps.td_direction(delta, phi)
    np.testing.assert_allclose(steps.head_step(w, B, z, alpha), w + alpha * delta * B.T @ phi,
                               rtol=0, atol=1e-15)


def test_representation_gradient_is_the_outer_product() -> None:
    z, w = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])
    np.testing.assert_array_equal(steps.representation_gradient(z, w), np.outer(z, w))


def test_server_average_by_hand() -> None:
    B = np.zeros((2, 1))
    G = np.array([[[1.0], [2.0]], [[3.0], [6.0]]])  # two agents
    # B + c_B alpha mean(G) = 0 + 0.5 * 0.1 * [2, 4]
    np.testing.assert_allclose(steps.server_average(B, G, 0.1, c_B=0.5), [[0.1], [0.2]],
                               rtol=0, atol=1e-15)


def test_local_copies_with_period_one_equal_the_server_average() -> None:
    rng = np.random.default_rng(2)
    B, G = _orthonormal(6, 2, 3), rng.standard_normal((4, 6, 2))
    local = steps.local_representation_step(np.broadcast_to(B, G.shape), G, 0.05, c_B=2.0)
    np.testing.assert_allclose(steps.average_local_copies(local),
                               steps.server_average(B, G, 0.05, c_B=2.0), rtol=0, atol=1e-15)


def test_local_td_step_by_hand() -> None:
    np.testing.assert_allclose(steps.local_td_step(np.array([1.0, 1.0]), np.array([2.0, -4.0]),
                                                   0.25), [1.5, 0.0], rtol=0, atol=1e-15)


def test_fedtd_average_replaces_every_copy_by_the_mean() -> None:
    theta = np.array([[[1.0, 0.0], [3.0, 2.0]], [[0.0, 0.0], [2.0, 2.0]]])  # (seeds, agents, d)
    np.testing.assert_array_equal(steps.fedtd_average(theta),
                                  [[[2.0, 1.0], [2.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])


def test_fedrep_schedule_alternates_tau_head_steps_and_one_representation_step() -> None:
    pattern = [steps.fedrep_updates_representation(t, 2) for t in range(7)]
    assert pattern == [False, False, True, False, False, True, False]
    assert all(steps.fedrep_updates_representation(t, 1) == (t % 2 == 1) for t in range(6))


# ------------------------------------------------------------------ retraction

@settings(max_examples=60, deadline=None)
@given(shape=step_shapes(), seed=st.integers(0, 2**32 - 1), rebase=st.booleans())
def test_retraction_is_the_positive_diagonal_qr_over_any_batch(
        shape: tuple[tuple[int, ...], int, int, int], seed: int, rebase: bool) -> None:
    batch, n_agents, dim, rank = shape
    rng = np.random.default_rng(seed)
    B_tilde = rng.standard_normal((*batch, dim, rank))
    w = rng.standard_normal((*batch, n_agents, rank))
    out = steps.retraction_step(B_tilde, w, rebase_heads=rebase)
    assert out.B.shape == (*batch, dim, rank) and out.w.shape == (*batch, n_agents, rank)
    for k in np.ndindex(*batch):
        Q = out.B[k]
        R = Q.T @ B_tilde[k]
        # Householder QR is backward stable whatever the conditioning: Q^T Q = I and Q R = B~
        # to a few ulps of ||B~|| (entries O(1), at most 6 x 3), and R = Q^T B~ is upper
        # triangular to the same order. A thin QR with diag(R) > 0 is unique, so this pins Q.
        np.testing.assert_allclose(Q.T @ Q, np.eye(rank), rtol=0, atol=1e-12)
        np.testing.assert_allclose(Q @ R, B_tilde[k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.tril(R, -1), 0.0, rtol=0, atol=1e-12)
        assert np.all(np.diag(R) > 0)
        if rebase:  # w <- R w: the predictions B~ w are unchanged
            np.testing.assert_allclose(out.w[k] @ Q.T, w[k] @ B_tilde[k].T, rtol=0, atol=1e-11)
        else:
            np.testing.assert_array_equal(out.w[k], w[k])


def test_retraction_of_an_orthonormal_basis_is_the_identity() -> None:
    B, w = _orthonormal(6, 2, 4), np.arange(6.0).reshape(3, 2)
    out = steps.retraction_step(B, w, rebase_heads=True)
    np.testing.assert_allclose(out.B, B, rtol=0, atol=1e-14)
    np.testing.assert_allclose(out.w, w, rtol=0, atol=1e-13)


@settings(max_examples=60, deadline=None)
@given(shape=step_shapes(), seed=st.integers(0, 2**32 - 1), rebase=st.booleans())
def test_polar_retraction_is_the_nearest_orthonormal_factor_over_any_batch(
        shape: tuple[tuple[int, ...], int, int, int], seed: int, rebase: bool) -> None:
    batch, n_agents, dim, rank = shape
    rng = np.random.default_rng(seed)
    B_tilde = rng.standard_normal((*batch, dim, rank))
    w = rng.standard_normal((*batch, n_agents, rank))
    out = steps.polar_retraction_step(B_tilde, w, rebase_heads=rebase)
    assert out.B.shape == (*batch, dim, rank) and out.w.shape == (*batch, n_agents, rank)
    for k in np.ndindex(*batch):
        B = out.B[k]
        H = B.T @ B_tilde[k]
        # B~ = B H with B orthonormal and H symmetric positive definite: the polar
        # decomposition, unique for full-rank B~; H^2 = B~^T B~. Gaussian B~ of at most 6 x 4
        # is well conditioned except with tiny probability; tolerances as for QR above.
        np.testing.assert_allclose(B.T @ B, np.eye(rank), rtol=0, atol=1e-12)
        np.testing.assert_allclose(B @ H, B_tilde[k], rtol=0, atol=1e-11)
        np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-11)
        assert np.all(np.linalg.eigvalsh(0.5 * (H + H.T)) > 0)
        if rebase:  # w <- H w: the predictions B~ w are unchanged
            np.testing.assert_allclose(out.w[k] @ B.T, w[k] @ B_tilde[k].T, rtol=0, atol=1e-11)
        else:
            np.testing.assert_array_equal(out.w[k], w[k])


def test_polar_retraction_by_hand() -> None:
    # B~ = Q0 S with Q0 orthonormal, S symmetric positive definite: B = Q0 and H = S.
    Q0 = _orthonormal(4, 2, 8)
    S = np.array([[2.0, 0.5], [0.5, 1.0]])
    out = steps.polar_retraction_step(Q0 @ S, np.array([[1.0, -1.0]]), rebase_heads=True)
    np.testing.assert_allclose(out.B, Q0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(out.w, [[1.5, -0.5]], rtol=0, atol=1e-14)  # S (1, -1)
    # an orthonormal B~ is its own polar factor, and the heads keep their values
    same = steps.polar_retraction_step(Q0, np.arange(6.0).reshape(3, 2), rebase_heads=True)
    np.testing.assert_allclose(same.B, Q0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(same.w, np.arange(6.0).reshape(3, 2), rtol=0, atol=1e-13)


def test_polar_retraction_rejects_a_rank_deficient_basis() -> None:
    with pytest.raises(ValueError, match="B_tilde must have full column rank; smallest singular"):
        steps.polar_retraction_step(np.ones((5, 2)), np.zeros((1, 2)), rebase_heads=False)


# ------------------------------------------------------------------ low-rank projection

@settings(max_examples=40, deadline=None)
@given(shape=step_shapes(), extra_agents=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_lowrank_projection_is_the_eckart_young_truncation(
        shape: tuple[tuple[int, ...], int, int, int], extra_agents: int, seed: int) -> None:
    batch, n_agents, dim, rank = shape
    n_agents += extra_agents  # 1..9 agents, fewer or more than the rank
    theta = np.random.default_rng(seed).standard_normal((*batch, n_agents, dim))
    out = steps.lowrank_projection(theta, rank)
    assert out.theta.shape == theta.shape and out.basis.shape == (*batch, dim, rank)
    for k in np.ndindex(*batch):
        basis, projected = out.basis[k], out.theta[k]
        sigma = np.linalg.svd(theta[k], compute_uv=False)
        np.testing.assert_allclose(basis.T @ basis, np.eye(rank), rtol=0, atol=1e-12)
        # Eckart-Young: the squared residual is the sum of the discarded squared singular
        # values (sums of <= 54 squares of O(1) entries: round-off far below 1e-10).
        assert np.sum((theta[k] - projected) ** 2) == pytest.approx(np.sum(sigma[rank:] ** 2),
                                                                    abs=1e-10)
        assert np.linalg.matrix_rank(projected, tol=1e-9) <= rank
        # A projection: applying it again changes nothing.
        np.testing.assert_allclose(steps.lowrank_projection(projected, rank).theta, projected,
                                   rtol=0, atol=1e-10)


def test_lowrank_projection_keeps_a_rank_r_stack() -> None:
    rng = np.random.default_rng(6)
    B = _orthonormal(8, 2, 7)
    theta = rng.standard_normal((5, 2)) @ B.T
    out = steps.lowrank_projection(theta, 2)
    np.testing.assert_allclose(out.theta, theta, rtol=0, atol=1e-12)
    assert subspace.principal_angle_distance(out.basis, B) < 1e-12


@pytest.mark.parametrize(("rank", "match"), [(0, "rank"), (7, "rank must be <= dim"),
                                             (1.5, "rank")])
def test_lowrank_projection_rejects_bad_rank(rank, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        steps.lowrank_projection(np.ones((3, 6)), rank)


# ------------------------------------------------------------------ mean path

def test_expected_td_error_is_the_stationary_mean_of_delta() -> None:
    rng = np.random.default_rng(9)
    n, d = 5, 3
    P = rng.dirichlet(np.ones(n), size=n)
    r, Phi = rng.standard_normal(n), rng.standard_normal((n, d))
    mu, J = markov.stationary_distribution(P), td.average_reward(P, r)
    theta, eta = rng.standard_normal(d), 0.3
    mean = sum(mu[s] * P[s, s1] * (r[s] - eta + (Phi[s1] - Phi[s]) @ theta)
               for s in range(n) for s1 in range(n))
    assert steps.expected_td_error(J, eta) == pytest.approx(mean, abs=1e-13)


def test_expected_td_direction_is_the_stationary_mean_of_delta_phi() -> None:
    rng = np.random.default_rng(8)
    n, d = 5, 3
    P = rng.dirichlet(np.ones(n), size=n)
    r = rng.standard_normal(n)
    Phi = rng.standard_normal((n, d))
    Phi -= Phi.mean(axis=0)  # keep 1 out of span(Phi)
    Phi /= np.linalg.norm(Phi, axis=1).max()
    A, b = td.td_matrices(P, r, Phi)
    mu, J = markov.stationary_distribution(P), td.average_reward(P, r)
    theta, eta = rng.standard_normal(d), 0.3
    # Enumerate every transition (s, s') with probability mu(s) P(s, s').
    mean = sum(mu[s] * P[s, s1] * (r[s] - eta + (Phi[s1] - Phi[s]) @ theta) * Phi[s]
               for s in range(n) for s1 in range(n))
    got = steps.expected_td_direction(A, b, Phi.T @ mu, J, eta, theta)
    np.testing.assert_allclose(got, mean, rtol=0, atol=1e-13)


# ------------------------------------------------------------------ broadcasting

@settings(max_examples=60, deadline=None)
@given(shape=step_shapes(), seed=st.integers(0, 2**32 - 1))
def test_steps_broadcast_over_batch_and_agents(shape: tuple[tuple[int, ...], int, int, int],
                                               seed: int) -> None:
    batch, N, d, r = shape
    rng = np.random.default_rng(seed)
    B = subspace.haar_orthonormal(d, r, rng, size=batch)  # (*batch, d, r), shared by the agents
    w, eta = rng.standard_normal((*batch, N, r)), rng.standard_normal((*batch, N))
    reward = rng.random((*batch, N))
    phi, phi1 = rng.standard_normal((2, *batch, N, d))
    alpha, c_eta, c_B = 0.1, 0.5, 2.0
    B_agents = B[..., None, :, :]
    theta = steps.shared_parameter(B_agents, w)
    delta = steps.td_error(reward, eta, phi, phi1, theta)
    z = steps.td_direction(delta, phi)
    eta1 = steps.gain_step(eta, reward, alpha, c_eta=c_eta)
    w1 = steps.head_step(w, B_agents, z, alpha)
    G = steps.representation_gradient(z, w)
    B1 = steps.server_average(B, G, alpha, c_B=c_B)
    local = steps.local_representation_step(np.broadcast_to(B_agents, G.shape), G, alpha, c_B=c_B)
    local_theta = steps.local_td_step(theta, z, alpha)
    assert delta.shape == eta1.shape == (*batch, N) and z.shape == (*batch, N, d)
    assert w1.shape == (*batch, N, r) and G.shape == local.shape == (*batch, N, d, r)
    assert B1.shape == (*batch, d, r)
    # Each entry recomputed one (batch index, agent) at a time from the equations. Entries are
    # sums of <= 6 products of O(1) draws, so the two orders of summation agree to ~1e-15;
    # 1e-12 only absorbs that round-off.
    tol = {"rtol": 0, "atol": 1e-12}
    for k in np.ndindex(*batch):
        for i in range(N):
            theta_ki = B[k] @ w[k][i]
            delta_ki = reward[k][i] - eta[k][i] + (phi1[k][i] - phi[k][i]) @ theta_ki
            assert delta[k][i] == pytest.approx(delta_ki, rel=0, abs=tol["atol"])
            eta_ki = eta[k][i] + c_eta * alpha * (reward[k][i] - eta[k][i])
            assert eta1[k][i] == pytest.approx(eta_ki, rel=0, abs=tol["atol"])
            np.testing.assert_allclose(w1[k][i], w[k][i] + alpha * delta_ki * B[k].T @ phi[k][i],
                                       **tol)
            np.testing.assert_allclose(local_theta[k][i], theta_ki + alpha * delta_ki * phi[k][i],
                                       **tol)
        G_mean = np.mean([delta[k][i] * np.outer(phi[k][i], w[k][i]) for i in range(N)], axis=0)
        np.testing.assert_allclose(B1[k], B[k] + c_B * alpha * G_mean, **tol)
        # with period 1 the average of the local copies is the server step
        np.testing.assert_allclose(steps.average_local_copies(local)[k], B1[k], **tol)
        np.testing.assert_allclose(steps.fedtd_average(local_theta)[k],
                                   np.broadcast_to(local_theta[k].mean(axis=0), (N, d)), **tol)
