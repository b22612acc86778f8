"""REFERENCE implementation: every algorithm as the most obvious per-agent Python loop.

This is not the simulator. It exists to check `ptdlib.simulate` (the tests demand agreement to
1e-10 on the same random draws) and as the speed baseline of ``benchmarks/throughput.py``. It is
deliberately plain: one loop over iterations, one over agents, the functions of `ptdlib.steps`
applied to one agent at a time, and every random number drawn one at a time, in the order the
simulator documents, from the same per-agent Generators:

- agent i of seed s draws states from ``default_rng(SeedSequence(s).spawn(N)[i])``: one uniform
  for s_0 ~ mu_i (Markov sampling only), then one uniform per transition (i.i.d. sampling: one
  for s_t ~ mu_i, then one for s_{t+1} ~ P_i(s_t, .)), each mapped to a state by
  `markov.sample_next_states` (the alias rule);
- reward noise (if any) from ``default_rng(SeedSequence(s, spawn_key=(i, 0)))``, one standard
  normal per iteration;
- the Haar-random initial basis from ``default_rng(s)``.

The readings of docs/algorithm.md ("Readings") are the same keyword arguments as in
`ptdlib.simulate.run`, each applied where the equations put it: the gain update in step 3, the
head projection right after step 4 and again after re-basing, the heads-first gradient after
step 4, the basis step beta_t in place of c_B alpha_t in step 6 (or the local copies' steps),
the polar factor in step 7.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ptdlib import markov, schedules, subspace
from ptdlib import steps as step


@dataclasses.dataclass(frozen=True)
class ReferenceResult:
    """Final state and records of one seed (see `reference_run`)."""

    theta: np.ndarray  # (N, d) final parameters (B w_i for the shared-basis methods)
    eta: np.ndarray  # (N,)
    B: np.ndarray | None  # (d, r) final basis of the shared-basis methods
    heads: np.ndarray | None  # (N, r)
    diverged: int  # iterations completed at divergence, or -1
    record_steps: list[int]
    parameter_error: list[float]  # (1/N) sum_i ||theta_i - theta_i*||^2 at each record
    gain_error: list[float]  # (1/N) sum_i (eta_i - J_i)^2
    subspace_distance: list[float]  # dist(B, B*) (shared-basis methods with B_star only)
    averaged_theta: np.ndarray | None = None  # (N, d) mean of theta_t, t = average_from..steps


def _mu_table(mu_i: np.ndarray) -> markov.AliasTables:
    """Alias table of mu_i: a one-agent 'chain' whose every row is mu_i."""
    return markov.alias_tables(np.tile(mu_i, (mu_i.shape[0], 1))[None])


def _draw(table: markov.AliasTables, agent: int, state: int, u: float) -> int:
    return int(markov.sample_next_states(table, np.array([agent]), np.array([state]),
                                         np.array([u]))[0])


def reference_run(problem: Any, algorithm: str = "personalized", *, steps: int, step_size: Any,
                  seed: int, rank: int | None = None, sampling: str = "markov",
                  record_steps: list[int] | None = None, init_subspace: np.ndarray | None = None,
                  communication_period: int = 1, rebase_heads: bool = False,
                  c_eta: float = 1.0, c_B: float = 1.0, tau: int = 1,
                  divergence_threshold: float | None = None, update_order: str = "simultaneous",
                  gain_update: str = "reward", head_radius: float | None = None,
                  retraction: str = "qr", representation_step_size: Any = None,
                  average_from: int | None = None) -> ReferenceResult:
    """Run one seed of ``algorithm`` (same meaning of every argument as `ptdlib.simulate.run`).

    With ``average_from`` the iterates theta_t^i of t = average_from, ..., steps are kept in a
    list and averaged at the end (each agent's own copy B^i w_i between rounds when K > 1).
    """
    N, d = problem.P.shape[0], problem.features.shape[1]
    Phi, rewards, sigma = problem.features, problem.rewards, problem.reward_noise
    r = rank if rank is not None else problem.B_star.shape[1]
    schedule = schedules.as_schedule(step_size)
    beta_schedule = (None if representation_step_size is None
                     else schedules.as_schedule(representation_step_size))
    retract = step.polar_retraction_step if retraction == "polar" else step.retraction_step

    def gain(eta_i: float, reward: float, delta: float, alpha: float) -> float:
        if gain_update == "td":
            return step.differential_gain_step(eta_i, delta, alpha, c_eta)
        return step.gain_step(eta_i, reward, alpha, c_eta)

    def project(heads: np.ndarray) -> np.ndarray:
        return heads if head_radius is None else step.head_projection(heads, head_radius)
    record_steps = [0, steps] if record_steps is None else record_steps
    threshold = divergence_threshold or 1e6 * max(
        1.0, np.max(np.abs(rewards)), np.max(np.linalg.norm(problem.theta_star, axis=1)), sigma)
    shared = algorithm in ("personalized", "fedrep", "oracle")
    K = communication_period if algorithm not in ("local", "oracle") else 1

    P_table = markov.alias_tables(problem.P)
    mu_tables = [_mu_table(problem.mu[i]) for i in range(N)]
    children = np.random.SeedSequence(seed).spawn(N)
    state_rng = [np.random.default_rng(children[i]) for i in range(N)]
    noise_rng = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, 0)))
                 for i in range(N)]

    if algorithm == "oracle":
        B = np.array(problem.B_star)
    elif init_subspace is not None:
        B = np.array(init_subspace)
    else:
        B = subspace.haar_orthonormal(d, r, np.random.default_rng(seed))
    B_local = [B.copy() for _ in range(N)]
    w = np.zeros((N, r))
    theta = np.zeros((N, d))
    eta = np.zeros(N)
    G = np.zeros((N, d, r))
    state = [0] * N
    if sampling == "markov":
        for i in range(N):
            state[i] = _draw(mu_tables[i], 0, 0, state_rng[i].random())

    def current_theta() -> np.ndarray:
        return np.array([B @ w[i] for i in range(N)]) if shared else theta

    result: dict[str, list] = {"parameter_error": [], "gain_error": [], "subspace_distance": []}

    def record() -> None:
        th = current_theta()
        result["parameter_error"].append(
            float(np.mean([np.sum((th[i] - problem.theta_star[i]) ** 2) for i in range(N)])))
        result["gain_error"].append(
            float(np.mean([(eta[i] - problem.average_reward[i]) ** 2 for i in range(N)])))
        if shared and problem.B_star is not None:
            result["subspace_distance"].append(subspace.principal_angle_distance(B, problem.B_star))

    def agent_parameters() -> np.ndarray:
        if not shared:
            return theta.copy()
        return np.array([(B_local[i] if K > 1 else B) @ w[i] for i in range(N)])

    iterates = [agent_parameters()] if average_from == 0 else []
    if 0 in record_steps:
        record()
    diverged = -1
    basis_changed = False
    for t in range(steps):
        alpha = schedule(t)
        # the basis step and its ratio: c_B alpha_t, or beta_t of a representation schedule
        beta, ratio = (alpha, c_B) if beta_schedule is None else (beta_schedule(t), 1.0)
        rep = algorithm == "personalized" or (
            algorithm == "fedrep" and step.fedrep_updates_representation(t, tau))
        for i in range(N):
            if sampling == "markov":
                s = state[i]
                s_next = _draw(P_table, i, s, state_rng[i].random())
                state[i] = s_next
            else:
                s = _draw(mu_tables[i], 0, 0, state_rng[i].random())
                s_next = _draw(P_table, i, s, state_rng[i].random())
            reward = rewards[i, s] + (sigma * noise_rng[i].standard_normal() if sigma > 0 else 0.0)
            if shared:
                basis = B_local[i] if K > 1 else B
                eta_t = eta[i]
                delta = step.td_error(reward, eta_t, Phi[s], Phi[s_next],
                                       step.shared_parameter(basis, w[i]))
                z = step.td_direction(delta, Phi[s])
                eta[i] = gain(eta_t, reward, delta, alpha)
                if rep and update_order == "simultaneous":
                    G[i] = step.representation_gradient(z, w[i])
                if not (algorithm == "fedrep" and rep):
                    w[i] = project(step.head_step(w[i], basis, z, alpha))
                if rep and update_order == "heads_first":
                    G[i] = step.heads_first_gradient(reward, eta_t, Phi[s], Phi[s_next], basis,
                                                     w[i])
                if rep and K > 1:
                    B_local[i] = step.local_representation_step(B_local[i], G[i], beta, ratio)
            else:
                delta = step.td_error(reward, eta[i], Phi[s], Phi[s_next], theta[i])
                eta[i] = gain(eta[i], reward, delta, alpha)
                theta[i] = step.local_td_step(theta[i], step.td_direction(delta, Phi[s]), alpha)

        round_now = (t + 1) % K == 0 or t + 1 == steps
        basis_changed = basis_changed or rep
        ok = np.all(np.abs(eta) <= threshold) and np.all(
            np.abs(w if shared else theta) <= threshold)
        if shared and round_now and basis_changed and ok:
            basis_changed = False
            B_tilde = (step.server_average(B, G, beta, ratio) if K == 1
                       else step.average_local_copies(np.array(B_local)))
            retracted = retract(B_tilde, w, rebase_heads=rebase_heads)
            B, w = retracted.B, (project(retracted.w) if rebase_heads else retracted.w)
            B_local = [B.copy() for _ in range(N)]
            ok = np.all(np.abs(w) <= threshold)
        if not ok:
            diverged = t + 1
            break
        if not shared and round_now and algorithm == "fedtd":
            theta = step.fedtd_average(theta)
        if not shared and round_now and algorithm == "lowrank_svd":
            theta = step.lowrank_projection(theta, r).theta
        if average_from is not None and t + 1 >= average_from:
            iterates.append(agent_parameters())
        if t + 1 in record_steps:
            record()

    return ReferenceResult(theta=current_theta(), eta=eta, B=B if shared else None,
                           heads=w if shared else None, diverged=diverged,
                           record_steps=list(record_steps),
                           averaged_theta=np.mean(iterates, axis=0) if iterates else None,
                           **result)
