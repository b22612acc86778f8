"""Tests for ptdlib.steps: each equation by hand, invariants, broadcasting over (seeds, agents)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdlib import markov, steps, subspace, td


def _orthonormal(dim: int, rank: int, seed: int) -> np.ndarray:
    return subspace.haar_orthonormal(dim, rank, seed)


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

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), rebase=st.booleans(), scale=st.floats(1e-3, 1.0))
def test_retraction_is_orthonormal_and_rebase_keeps_predictions(seed: int, rebase: bool,
                                                                scale: float) -> None:
    rng = np.random.default_rng(seed)
    B_tilde = _orthonormal(7, 3, seed) + scale * rng.standard_normal((7, 3))
    w = rng.standard_normal((4, 3))
    out = steps.retraction_step(B_tilde, w, rebase_heads=rebase)
    np.testing.assert_allclose(out.B.T @ out.B, np.eye(3), rtol=0, atol=1e-12)
    Q = np.linalg.qr(B_tilde)[0]
    # Same subspace as B~ (the projections agree) and, with rebase, the same predictions B~ w.
    np.testing.assert_allclose(out.B @ out.B.T, Q @ Q.T, rtol=0, atol=1e-12)
    if rebase:
        np.testing.assert_allclose(out.w @ out.B.T, w @ B_tilde.T, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(out.w, w)


def test_retraction_of_an_orthonormal_basis_is_the_identity() -> None:
    B, w = _orthonormal(6, 2, 4), np.arange(6.0).reshape(3, 2)
    out = steps.retraction_step(B, w, rebase_heads=True)
    np.testing.assert_allclose(out.B, B, rtol=0, atol=1e-14)
    np.testing.assert_allclose(out.w, w, rtol=0, atol=1e-13)


def test_retraction_batches_over_seeds() -> None:
    rng = np.random.default_rng(5)
    B_tilde, w = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 4, 2))
    batched = steps.retraction_step(B_tilde, w, rebase_heads=True)
    for k in range(3):
        single = steps.retraction_step(B_tilde[k], w[k], rebase_heads=True)
        np.testing.assert_allclose(batched.B[k], single.B, rtol=0, atol=1e-14)
        np.testing.assert_allclose(batched.w[k], single.w, rtol=0, atol=1e-14)


# ------------------------------------------------------------------ low-rank projection

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n_agents=st.integers(1, 9), rank=st.integers(1, 4))
def test_lowrank_projection_is_the_eckart_young_truncation(seed: int, n_agents: int,
                                                           rank: int) -> None:
    theta = np.random.default_rng(seed).standard_normal((n_agents, 6))
    out = steps.lowrank_projection(theta, rank)
    sigma = np.linalg.svd(theta, compute_uv=False)
    assert out.basis.shape == (6, rank)
    np.testing.assert_allclose(out.basis.T @ out.basis, np.eye(rank), rtol=0, atol=1e-12)
    # Eckart-Young: the squared residual is the sum of the discarded squared singular values.
    assert np.sum((theta - out.theta) ** 2) == pytest.approx(np.sum(sigma[rank:] ** 2), abs=1e-10)
    assert np.linalg.matrix_rank(out.theta, tol=1e-9) <= rank
    # A projection: applying it again changes nothing.
    np.testing.assert_allclose(steps.lowrank_projection(out.theta, rank).theta, out.theta,
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

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_steps_broadcast_over_seeds_and_agents(seed: int) -> None:
    rng = np.random.default_rng(seed)
    S, N, d, r = 2, 3, 5, 2
    B = np.stack([_orthonormal(d, r, seed + k) for k in range(S)])
    w, eta, reward = rng.standard_normal((S, N, r)), rng.standard_normal((S, N)), rng.random((S, N))
    phi, phi1 = rng.standard_normal((S, N, d)), rng.standard_normal((S, N, d))
    theta = steps.shared_parameter(B[:, None], w)
    delta = steps.td_error(reward, eta, phi, phi1, theta)
    z = steps.td_direction(delta, phi)
    w1 = steps.head_step(w, B[:, None], z, 0.1)
    B1 = steps.server_average(B, steps.representation_gradient(z, w), 0.1)
    for s in range(S):
        for i in range(N):
            delta_si = reward[s, i] - eta[s, i] + (phi1[s, i] - phi[s, i]) @ B[s] @ w[s, i]
            assert delta[s, i] == pytest.approx(delta_si, abs=1e-13)
            np.testing.assert_allclose(w1[s, i], w[s, i] + 0.1 * delta_si * B[s].T @ phi[s, i],
                                       rtol=0, atol=1e-13)
        G_mean = np.mean([delta[s, i] * np.outer(phi[s, i], w[s, i]) for i in range(N)], axis=0)
        np.testing.assert_allclose(B1[s], B[s] + 0.1 * G_mean, rtol=0, atol=1e-13)
