"""The algorithm's steps (docs/algorithm.md) and the baselines' steps, one pure function each.

Primer
------
Agent i at iteration t sits in state s_t^i, observes r_t^i and moves to s_{t+1}^i. Its linear
value estimate is phi(s)^T theta with theta = B w (shared basis B, d x r, own head w, r) for the
shared-representation methods, or a free theta in R^d for the baselines. With the *TD direction*

    z_t^i = delta_t^i phi(s_t^i)                     (the semi-gradient, in R^d)

one iteration of personalized single-timescale TD is (alpha_t one step size, c_eta, c_B ratios)

    2  td_error                  delta = r - eta + (phi(s') - phi(s))^T B w
    3  gain_step                 eta  <- eta + c_eta alpha (r - eta)
    4  head_step                 w    <- w + alpha B^T z            (= w + alpha delta B^T phi(s))
    5  representation_gradient   G    =  z w^T                      (= delta phi(s) w^T)
    6  server_average            B~   =  B + c_B alpha (1/N) sum_i G^i
    7  retraction_step           B    =  Q,  B~ = Q R (diag R > 0);  optionally w <- R w

All right-hand sides use the iterates at time t (simultaneous update). In the mean-path mode z
is replaced by its expectation `expected_td_direction` and r by J in `gain_step`.

Readings (docs/algorithm.md, "Readings"): the choices the paper's abstract leaves open, each a
switch of ``ptdlib.simulate.run`` whose default is the list above.

    update_order="heads_first"  step 5 after step 4, from the new head and the TD error it gives:
                                G = delta' phi(s) w_{t+1}^T                (`heads_first_gradient`)
    gain_update="td"            step 3 as differential TD: eta <- eta + c_eta alpha delta
                                                                      (`differential_gain_step`)
    head_radius=R               w <- w min(1, R / ||w||) after step 4 and after re-basing
                                                                             (`head_projection`)
    retraction="polar"          step 7 by the polar factor: B = U V^T, B~ = U S V^T; optionally
                                w <- V S V^T w                          (`polar_retraction_step`)
    representation_step_size    steps 6 (and the local copies' steps) with beta_t in place of
                                c_B alpha_t: `server_average` and `local_representation_step`
                                called with (beta_t, c_B = 1)

In the mean-path mode the TD error's expectation is `expected_td_error` = J - eta, so the two
gain updates coincide there.

Communication period K >= 1. With K = 1 the server averages every iteration (steps 6-7). With
K > 1 each agent keeps its own copy B^i, starting from the last broadcast basis, and steps it
locally with `local_representation_step` (B^i <- B^i + c_B alpha G^i, no retraction); after
every K-th iteration the server forms B~ = (1/N) sum_i B^i (`average_local_copies`), retracts,
and broadcasts Q to every copy. With K = 1 this is exactly step 6.

Baselines (same sampling and schedules)
  local        theta^i <- theta^i + alpha z^i                     (`local_td_step`)
  fedtd        local_td_step on copies, then theta^i <- (1/N) sum_j theta^j every K iterations
               (`fedtd_average`)
  oracle       steps 2-4 with B = B* fixed (no new function: `head_step` with B_star)
  lowrank_svd  local_td_step, then Theta = [theta^1 ... theta^N] <- its best rank-r
               approximation every K iterations (`lowrank_projection`)
  fedrep       cycles of tau + 1 iterations: tau with B frozen (steps 2-4), then one with the
               heads frozen (steps 2, 3, 5-7) (`fedrep_updates_representation`)

Shapes: every function broadcasts over leading axes, typically (seeds, agents); the agents
axis of `server_average`, `average_local_copies`, `fedtd_average` and `lowrank_projection` is
the one just before the per-agent quantity. These are the maths only: inputs are trusted
(``ptdlib.simulate.run`` validates at its boundary).

References
----------
Tsitsiklis, J. N. & Van Roy, B. (1999). Average cost temporal-difference learning. Automatica.
Collins, L., Hassani, H., Mokhtari, A. & Shakkottai, S. (2021). Exploiting shared
representations for personalized federated learning (FedRep). ICML.
Absil, P.-A., Mahony, R. & Sepulchre, R. (2008). Optimization Algorithms on Matrix Manifolds.
Bai, Y. et al. (2025). Multi-task low-rank TD learning (truncated-SVD projection of the stacked
parameters).
Wan, Y., Naik, A. & Sutton, R. S. (2021). Learning and planning in average-reward Markov
decision processes. ICML (differential TD: the gain driven by the TD error).
Higham, N. J. (1986). Computing the polar decomposition, with applications. SIAM J. Sci. Stat.
Comput. 7(4) (the polar factor as the nearest orthonormal matrix).
Wang, Yang & Su (2026). Personalized multi-agent average-reward TD-learning via joint linear
approximation. arXiv:2603.02426.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from ptdlib import subspace
from ptdlib._validation import FloatArray, check_positive_int

#: The readings of docs/algorithm.md ("Readings") with options; the first of each is the default.
UPDATE_ORDERS = ("simultaneous", "heads_first")
GAIN_UPDATES = ("reward", "td")
RETRACTIONS = ("qr", "polar")


def td_error(reward: ArrayLike, eta: ArrayLike, phi_t: ArrayLike, phi_tp1: ArrayLike,
             theta: ArrayLike) -> FloatArray:
    """Average-reward TD error (docs/algorithm.md, step 2).

    Parameters
    ----------
    reward : (...,)
        Observed rewards r_t.
    eta : (...,)
        Gain estimates eta_t.
    phi_t, phi_tp1 : (..., dim)
        Features phi(s_t) and phi(s_{t+1}).
    theta : (..., dim)
        Value parameters; theta = B w for the shared-representation methods.

    Returns
    -------
    (...,) ndarray
        delta_t.

    Notes
    -----
    delta_t = r_t - eta_t + (phi(s_{t+1}) - phi(s_t))^T theta_t,  theta_t = B_t w_t.

    References
    ----------
    Tsitsiklis & Van Roy (1999), eq. (5).
    """
    diff = np.asarray(phi_tp1) - np.asarray(phi_t)
    return np.asarray(reward) - np.asarray(eta) + np.einsum("...d,...d->...", diff, theta)


def shared_parameter(B: ArrayLike, w: ArrayLike) -> FloatArray:
    """Value parameter of a shared-representation agent.

    Parameters
    ----------
    B : (..., dim, rank)
        Basis (the shared one, or an agent's local copy).
    w : (..., rank)
        Head.

    Returns
    -------
    (..., dim) ndarray

    Notes
    -----
    theta = B w.
    """
    return np.einsum("...dr,...r->...d", B, w)


def td_direction(delta: ArrayLike, phi_t: ArrayLike) -> FloatArray:
    """Semi-gradient TD direction.

    Parameters
    ----------
    delta : (...,)
        TD errors.
    phi_t : (..., dim)
        Features of the current states.

    Returns
    -------
    (..., dim) ndarray

    Notes
    -----
    z_t = delta_t phi(s_t).
    """
    return np.asarray(delta)[..., None] * np.asarray(phi_t)


def expected_td_direction(A: ArrayLike, b: ArrayLike, Phi_mu: ArrayLike, J: ArrayLike,
                          eta: ArrayLike, theta: ArrayLike) -> FloatArray:
    """Mean of the TD direction under stationary sampling (the mean-path mode).

    Parameters
    ----------
    A : (..., dim, dim)
        TD matrices A_i = Phi^T D_i (P_i - I) Phi.
    b : (..., dim)
        b_i = Phi^T D_i (r_i - J_i 1).
    Phi_mu : (..., dim)
        Phi^T mu_i, the mean feature vector.
    J : (...,)
        Average rewards J_i.
    eta, theta : (...,), (..., dim)
        Current gain and value parameter.

    Returns
    -------
    (..., dim) ndarray
        E[delta phi(s)] with s ~ mu_i, s' ~ P_i(s, .).

    Notes
    -----
    E[z] = A_i theta + b_i + (J_i - eta) Phi^T mu_i.

    References
    ----------
    Tsitsiklis & Van Roy (1999), Section 4 (the ODE of average-cost TD).
    """
    A_theta = np.einsum("...ij,...j->...i", A, theta)
    return A_theta + np.asarray(b) + (np.asarray(J) - np.asarray(eta))[..., None] * Phi_mu


def gain_step(eta: ArrayLike, reward: ArrayLike, alpha: float, c_eta: float = 1.0) -> FloatArray:
    """Average-reward (gain) update (docs/algorithm.md, step 3).

    Parameters
    ----------
    eta : (...,)
        Gain estimates eta_t.
    reward : (...,)
        Observed rewards r_t (the gains J_i in the mean-path mode).
    alpha : float
        Step size alpha_t.
    c_eta : float, optional
        Single-timescale ratio (default 1).

    Returns
    -------
    (...,) ndarray
        eta_{t+1}.

    Notes
    -----
    eta_{t+1} = eta_t + c_eta alpha_t (r_t - eta_t).
    """
    eta = np.asarray(eta)
    return eta + c_eta * alpha * (np.asarray(reward) - eta)


def differential_gain_step(eta: ArrayLike, delta: ArrayLike, alpha: float,
                           c_eta: float = 1.0) -> FloatArray:
    """Differential-TD gain update (the reading ``gain_update="td"`` of step 3).

    Parameters
    ----------
    eta : (...,)
        Gain estimates eta_t.
    delta : (...,)
        TD errors delta_t (step 2; `expected_td_error` in the mean-path mode).
    alpha : float
        Step size alpha_t.
    c_eta : float, optional
        Ratio of the gain step to alpha (default 1).

    Returns
    -------
    (...,) ndarray
        eta_{t+1}.

    Notes
    -----
    eta_{t+1} = eta_t + c_eta alpha_t delta_t.

    References
    ----------
    Wan, Naik & Sutton (2021), Differential TD-learning; Sutton & Barto (2018), Section 10.3
    (box "Differential semi-gradient Sarsa").
    """
    return np.asarray(eta) + c_eta * alpha * np.asarray(delta)


def expected_td_error(J: ArrayLike, eta: ArrayLike) -> FloatArray:
    """Mean of the TD error under stationary sampling (the mean-path mode).

    Parameters
    ----------
    J : (...,)
        Average rewards J_i.
    eta : (...,)
        Gain estimates.

    Returns
    -------
    (...,) ndarray
        E[delta] with s ~ mu_i, s' ~ P_i(s, .), for any value parameter theta.

    Notes
    -----
    E[delta] = J_i - eta: the feature terms cancel, E[phi(s')] = Phi^T P_i^T mu_i = Phi^T mu_i.
    """
    return np.asarray(J) - np.asarray(eta)


def head_step(w: ArrayLike, B: ArrayLike, z: ArrayLike, alpha: float) -> FloatArray:
    """Head update (docs/algorithm.md, step 4).

    Parameters
    ----------
    w : (..., rank)
        Heads w_t.
    B : (..., dim, rank)
        Basis B_t (for the oracle, B*).
    z : (..., dim)
        TD directions z_t = delta_t phi(s_t) (their expectation in the mean-path mode).
    alpha : float
        Step size alpha_t.

    Returns
    -------
    (..., rank) ndarray
        w_{t+1}.

    Notes
    -----
    w_{t+1} = w_t + alpha_t B_t^T z_t = w_t + alpha_t delta_t B_t^T phi(s_t).
    """
    return np.asarray(w) + alpha * np.einsum("...dr,...d->...r", B, z)


def head_projection(w: ArrayLike, radius: float) -> FloatArray:
    """Projection of each head onto the ball ||w|| <= R (the reading ``head_radius=R``).

    Parameters
    ----------
    w : (..., rank)
        Heads after the head step (or after re-basing).
    radius : float
        R > 0.

    Returns
    -------
    (..., rank) ndarray
        The nearest point of the ball; heads inside it are returned unchanged, bit for bit.

    Notes
    -----
    w <- w R / max(||w||, R).

    References
    ----------
    Bhandari, J., Russo, D. & Singal, R. (2018). A finite time analysis of temporal difference
    learning with linear function approximation. COLT (projected TD).
    """
    w = np.asarray(w, dtype=np.float64)
    norm = np.sqrt(np.sum(w * w, axis=-1, keepdims=True))
    return w * (radius / np.maximum(norm, radius))


def representation_gradient(z: ArrayLike, w: ArrayLike) -> FloatArray:
    """Local representation (semi-)gradient (docs/algorithm.md, step 5).

    Parameters
    ----------
    z : (..., dim)
        TD directions z_t = delta_t phi(s_t).
    w : (..., rank)
        Heads w_t (before their own update).

    Returns
    -------
    (..., dim, rank) ndarray
        G_t.

    Notes
    -----
    G_t = z_t w_t^T = delta_t phi(s_t) w_t^T.
    """
    return np.asarray(z)[..., :, None] * np.asarray(w)[..., None, :]


def heads_first_gradient(reward: ArrayLike, eta: ArrayLike, phi_t: ArrayLike,
                         phi_tp1: ArrayLike, B: ArrayLike, w_next: ArrayLike) -> FloatArray:
    """Representation gradient from the updated head (the reading ``update_order="heads_first"``).

    Parameters
    ----------
    reward, eta : (...,)
        Observed rewards r_t and the gains eta_t before their update.
    phi_t, phi_tp1 : (..., dim)
        Features phi(s_t) and phi(s_{t+1}).
    B : (..., dim, rank)
        Basis B_t (the shared one, or an agent's local copy) before its update.
    w_next : (..., rank)
        Heads w_{t+1} after step 4 (and `head_projection`, if any).

    Returns
    -------
    (..., dim, rank) ndarray
        G_t.

    Notes
    -----
    G_t = delta'_t phi(s_t) w_{t+1}^T,
    delta'_t = r_t - eta_t + (phi(s_{t+1}) - phi(s_t))^T B_t w_{t+1}.

    References
    ----------
    Collins et al. (2021), Algorithm 1 (FedRep updates the representation after the heads).
    """
    delta = td_error(reward, eta, phi_t, phi_tp1, shared_parameter(B, w_next))
    return representation_gradient(td_direction(delta, phi_t), w_next)


def server_average(B: ArrayLike, G: ArrayLike, alpha: float, c_B: float = 1.0) -> FloatArray:
    """Server step on the averaged representation gradient (docs/algorithm.md, step 6).

    Parameters
    ----------
    B : (..., dim, rank)
        Shared basis B_t.
    G : (..., n_agents, dim, rank)
        Local gradients G_t^i.
    alpha : float
        Step size alpha_t.
    c_B : float, optional
        Single-timescale ratio (default 1).

    Returns
    -------
    (..., dim, rank) ndarray
        B~_{t+1} (not yet orthonormal).

    Notes
    -----
    B~_{t+1} = B_t + c_B alpha_t (1/N) sum_i G_t^i.
    """
    return np.asarray(B) + c_B * alpha * np.mean(G, axis=-3)


def local_representation_step(B_local: ArrayLike, G: ArrayLike, alpha: float,
                              c_B: float = 1.0) -> FloatArray:
    """An agent's step on its own copy of the basis between averagings (period K > 1).

    Parameters
    ----------
    B_local : (..., dim, rank)
        Local copies B_t^i.
    G : (..., dim, rank)
        Local gradients G_t^i.
    alpha : float
        Step size alpha_t.
    c_B : float, optional
        Single-timescale ratio (default 1).

    Returns
    -------
    (..., dim, rank) ndarray
        B_{t+1}^i (not retracted; the server retracts the average).

    Notes
    -----
    B_{t+1}^i = B_t^i + c_B alpha_t G_t^i.
    """
    return np.asarray(B_local) + c_B * alpha * np.asarray(G)


def average_local_copies(B_local: ArrayLike) -> FloatArray:
    """Server average of the agents' local bases at a communication round (period K > 1).

    Parameters
    ----------
    B_local : (..., n_agents, dim, rank)
        Local copies after their local steps.

    Returns
    -------
    (..., dim, rank) ndarray
        B~, to be retracted; with K = 1 it equals `server_average`.

    Notes
    -----
    B~ = (1/N) sum_i B^i.
    """
    return np.mean(B_local, axis=-3)


@dataclasses.dataclass(frozen=True)
class Retraction:
    """Result of `retraction_step`: the orthonormal basis and the (possibly re-based) heads."""

    B: FloatArray
    w: FloatArray


def retraction_step(B_tilde: ArrayLike, w: ArrayLike, *, rebase_heads: bool) -> Retraction:
    """QR retraction of the averaged basis, optionally re-basing the heads (step 7).

    Parameters
    ----------
    B_tilde : (..., dim, rank)
        Averaged basis B~_{t+1}.
    w : (..., n_agents, rank)
        Heads w_{t+1}.
    rebase_heads : bool
        If True, w <- R w so that the predictions B~ w = Q (R w) are unchanged.

    Returns
    -------
    Retraction
        ``B`` (..., dim, rank) orthonormal and ``w`` (..., n_agents, rank).

    Notes
    -----
    B~_{t+1} = Q R (diag R > 0);  B_{t+1} = Q;  w_{t+1}^i <- R w_{t+1}^i if rebase_heads.

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Ch. 4 (QR retraction), via `subspace.qr_retraction`.
    """
    Q, R = subspace.qr_retraction(B_tilde)
    w = np.asarray(w, dtype=np.float64)
    if rebase_heads:
        w = np.einsum("...rk,...nk->...nr", R, w)
    return Retraction(B=Q, w=w)


def polar_retraction_step(B_tilde: ArrayLike, w: ArrayLike, *,
                          rebase_heads: bool) -> Retraction:
    """Polar retraction of the averaged basis, optionally re-basing the heads (reading of step 7).

    Parameters
    ----------
    B_tilde : (..., dim, rank)
        Averaged basis B~_{t+1}.
    w : (..., n_agents, rank)
        Heads w_{t+1}.
    rebase_heads : bool
        If True, w <- V S V^T w so that the predictions B~ w = (U V^T)(V S V^T w) are unchanged.

    Returns
    -------
    Retraction
        ``B`` (..., dim, rank) orthonormal and ``w`` (..., n_agents, rank).

    Notes
    -----
    B~_{t+1} = U S V^T (thin SVD);  B_{t+1} = U V^T;  w_{t+1}^i <- V S V^T w_{t+1}^i if
    rebase_heads.

    References
    ----------
    Absil, Mahony & Sepulchre (2008), Ch. 4 (the polar retraction); Higham (1986); via
    `subspace.polar_retraction`.
    """
    B, H = subspace.polar_retraction(B_tilde)
    w = np.asarray(w, dtype=np.float64)
    if rebase_heads:
        w = np.einsum("...rk,...nk->...nr", H, w)
    return Retraction(B=B, w=w)


def local_td_step(theta: ArrayLike, z: ArrayLike, alpha: float) -> FloatArray:
    """Average-reward TD(0) on a full parameter (baselines local, fedtd, lowrank_svd).

    Parameters
    ----------
    theta : (..., dim)
        Parameters theta_t^i.
    z : (..., dim)
        TD directions z_t^i = delta_t^i phi(s_t^i) with delta computed from theta_t^i.
    alpha : float
        Step size alpha_t.

    Returns
    -------
    (..., dim) ndarray

    Notes
    -----
    theta_{t+1}^i = theta_t^i + alpha_t delta_t^i phi(s_t^i).

    References
    ----------
    Tsitsiklis & Van Roy (1999), eq. (6).
    """
    return np.asarray(theta) + alpha * np.asarray(z)


def fedtd_average(theta: ArrayLike) -> FloatArray:
    """Federated TD communication round: every copy becomes the average.

    Parameters
    ----------
    theta : (..., n_agents, dim)
        Local parameters after their local steps.

    Returns
    -------
    (..., n_agents, dim) ndarray
        Every row equal to the mean.

    Notes
    -----
    theta^i <- (1/N) sum_j theta^j for every i.

    References
    ----------
    Khodadadian, S. et al. (2022). Federated reinforcement learning: linear speedup under
    Markovian sampling. ICML.
    """
    theta = np.asarray(theta)
    return np.broadcast_to(theta.mean(axis=-2, keepdims=True), theta.shape).copy()


@dataclasses.dataclass(frozen=True)
class LowRankProjection:
    """Result of `lowrank_projection`: projected parameters and the top-r left singular basis."""

    theta: FloatArray
    basis: FloatArray


def lowrank_projection(theta: ArrayLike, rank: int) -> LowRankProjection:
    """Best rank-r approximation of the stacked parameters (truncated SVD).

    Parameters
    ----------
    theta : (..., n_agents, dim)
        Parameters; the stacked matrix is Theta = theta^T (dim x n_agents).
    rank : int
        Target rank r, 1 <= r <= dim (r >= n_agents leaves theta unchanged).

    Returns
    -------
    LowRankProjection
        ``theta`` (..., n_agents, dim) projected and ``basis`` (..., dim, rank) the top-r left
        singular vectors U_r of Theta.

    Notes
    -----
    Theta <- U_r U_r^T Theta,  Theta = U S V^T (Eckart-Young).

    References
    ----------
    Bai et al. (2025), multi-task low-rank TD; Eckart & Young (1936).
    """
    theta = np.asarray(theta, dtype=np.float64)
    rank = check_positive_int(rank, "rank")
    if rank > theta.shape[-1]:
        raise ValueError(f"rank must be <= dim = {theta.shape[-1]}; got {rank}")
    # theta (N x d) = U S V^T, so the left singular vectors of Theta = theta^T are the rows of V^T;
    # full V^T (d x d) keeps r columns even when N < r, without forming U (N x N) for large N.
    _, _, Vt = np.linalg.svd(theta, full_matrices=theta.shape[-2] < theta.shape[-1])
    basis = np.swapaxes(Vt[..., :rank, :], -1, -2)
    projected = np.einsum("...nd,...dr,...er->...ne", theta, basis, basis)
    return LowRankProjection(theta=projected, basis=basis)


def fedrep_updates_representation(t: int, tau: int) -> bool:
    """Whether FedRep iteration t is a representation step (else a head step).

    Parameters
    ----------
    t : int
        0-based iteration index.
    tau : int
        Number of head steps per cycle, >= 1.

    Returns
    -------
    bool

    Notes
    -----
    representation step iff t mod (tau + 1) = tau: tau head steps with B frozen, then one B step.

    References
    ----------
    Collins et al. (2021), Algorithm 1 (FedRep).
    """
    return t % (tau + 1) == tau
