"""Control with shared structure: personalized differential SARSA against its baselines.

Primer
------
Each agent i acts in its own MDP (`ptdlib.mdp.ControlProblem`) and estimates differential
action values linearly in the shared features, Q_i(s, a) = psi(s, a)^T theta_i. With the
on-policy SARSA transition (s, a, r, s', a'), a' drawn from the behaviour policy at s', the
differential semi-gradient SARSA step (Sutton & Barto 2018, Section 10.3) is

    delta = r - eta + (psi(s', a') - psi(s, a))^T theta,   theta <- theta + alpha delta psi(s, a).

This is the prediction algorithm of docs/algorithm.md with phi(s) replaced by psi(s, a) and the
next feature chosen by the agent, so the learners reuse `ptdlib.steps` verbatim:

- ``personalized``: theta_i = B w_i, shared orthonormal B (dim x rank) averaged by the server
  and retracted by QR (`steps.server_average`, `steps.retraction_step`), own heads w_i and gains;
- ``independent``: a free theta_i in R^dim per agent, no communication (`steps.local_td_step`);
- ``federated``: one theta shared by all agents, averaged every step (`steps.fedtd_average`);
  each agent keeps its own gain estimate.

Gain update. We use Sutton & Barto's eta <- eta + c_eta alpha delta (`differential_gain_step`,
from `ptdlib.steps`, where it is the prediction algorithm's reading ``gain_update="td"``),
not the reward average eta <- eta + c_eta alpha (r - eta), the prediction algorithm's default
(`steps.gain_step`). Under on-policy stationary sampling both have the same fixed point
(E[Q(s', a') - Q(s, a)] = 0, so E delta = 0 iff eta = E r), but once Q is accurate delta has
much smaller variance than r - eta: the state-action part of the reward is explained by Q. A
noisy eta matters here because the centred features cannot absorb a constant: an error eta - J
pushes theta along the mean feature and can flip greedy actions. In an exploratory seeded
comparison (40 states, 4 actions, dim 100, rank 2, 4 seeds, 8 settings) the delta form lowered
the late optimality gap in 7 of 8 settings, by up to 40%.

Exploration: epsilon-greedy (pi = epsilon / |A| + (1 - epsilon) greedy) or softmax with a
temperature; a' is drawn from the behaviour table by inverse CDF with one uniform.

Evaluation is exact: at every record, each agent's greedy policy (argmax_a Q_i(s, a), ties to the
lowest index) induces a chain whose gain J_i(greedy) = mu^T r_pi comes from GTH elimination;
the optimality gap is J_i* - J_i(greedy) >= 0 with J_i* from relative value iteration.

Common random numbers. Agent i of seed k draws from SeedSequence(k, spawn_key=(i,)): two
uniforms (u, v) for its start, s_0 = floor(n_states u) and a_0 from the behaviour policy at
s_0 by inverse CDF of v (the first action whose cumulative probability exceeds v); then two per
step, the next state by the one-uniform alias rule of `markov.sample_next_states` (one table
per agent and action) and the next action by inverse CDF as above. Every learner consumes the
same uniforms, and agent i's stream does not depend on N. The personalized learner's initial B
is Haar-random from the root SeedSequence(k).

References
----------
Sutton, R. S. & Barto, A. G. (2018). Reinforcement Learning: An Introduction, Section 10.3.
Collins et al. (2021), FedRep; Wang, Yang & Su (2026), arXiv:2603.02426.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ptdlib import markov, mdp, schedules, stats, steps, subspace
from ptdlib._validation import FloatArray, IntArray, check_in_range, check_positive_int
from ptdlib.steps import differential_gain_step  # the gain step of differential SARSA too

LEARNERS = ("personalized", "independent", "federated")
EXPLORATIONS = ("epsilon_greedy", "softmax")
#: Uniforms drawn per agent per block (the stream is the same for any block size).
_BLOCK = 1024
#: |TD error| at or above this counts as divergence (planted values are O(value_scale)).
_DIVERGED = 1e6


class LearnerDiverged(ValueError):
    """A run's TD error reached the divergence level: its step size is too large.

    A ValueError (the step size is the bad input), so that callers that tune a step on a grid
    can tell a diverged run from any other error.
    """


@dataclasses.dataclass(frozen=True)
class ControlConfig:
    """Hyper-parameters shared by every learner; validated on construction.

    Attributes
    ----------
    steps : samples per agent (>= 1).
    alpha : step size: a float > 0 (constant) or a `ptdlib.schedules.Schedule`.
    epsilon : exploration rate in [0, 1] (epsilon-greedy).
    exploration : "epsilon_greedy" or "softmax".
    temperature : softmax temperature (> 0).
    rank : rank of the personalized learner's B; None = the problem's planted rank.
    c_eta : ratio of the gain step to alpha (> 0).
    c_B : ratio of the representation step to alpha (> 0).
    record_every : evaluate the greedy policies every this many steps (>= 1).
    rebase_heads : re-base heads by R after each QR retraction (docs/algorithm.md, step 7).

    Notes
    -----
    Why c_B = 0.05 by default: the representation step c_B alpha delta psi w^T moves B at a rate
    of about c_B alpha ||w||^2 m2 / dim (m2 = mean ||psi||^2), and heads that produce action
    values of size value_scale have ||w||^2 ~ value_scale^2 dim / (rank m2); so the B step is
    about c_B alpha value_scale^2 / rank, while each head coordinate moves at ~ alpha m2 / dim.
    With c_B = 1 and value_scale = 1 the basis is far noisier than the heads. alpha = 0.4 and
    c_B = 0.05 gave the clearest constant-step comparison in exploratory runs (20 states,
    4 actions, dim 40, rank 2).
    """

    steps: int
    alpha: float | schedules.Schedule = 0.4
    epsilon: float = 0.1
    exploration: str = "epsilon_greedy"
    temperature: float = 0.1
    rank: int | None = None
    c_eta: float = 1.0
    c_B: float = 0.05
    record_every: int = 100
    rebase_heads: bool = False

    def __post_init__(self) -> None:
        check_positive_int(self.steps, "steps")
        check_positive_int(self.record_every, "record_every")
        if not isinstance(self.alpha, schedules.Schedule):
            check_in_range(self.alpha, "alpha", 0.0, np.inf, low_open=True, high_open=True)
        check_in_range(self.epsilon, "epsilon", 0.0, 1.0)
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"exploration must be one of {EXPLORATIONS}; "
                             f"got {self.exploration!r}")
        check_in_range(self.temperature, "temperature", 0.0, np.inf, low_open=True,
                       high_open=True)
        if self.rank is not None:
            check_positive_int(self.rank, "rank")
        for name in ("c_eta", "c_B"):
            check_in_range(getattr(self, name), name, 0.0, np.inf, low_open=True, high_open=True)
        if not isinstance(self.rebase_heads, bool):
            raise ValueError(f"rebase_heads must be a bool; got {self.rebase_heads!r}")


@dataclasses.dataclass(frozen=True)
class ControlTrace:
    """Exact evaluation of one learner over training, for several seeds.

    Attributes
    ----------
    learner : "personalized", "independent" or "federated".
    seeds : the run seeds, in order.
    steps : (records,) samples per agent at each record (0 = before learning).
    average_reward : (seeds, records, n_agents) exact gain J_i of each greedy policy.
    optimal_average_reward : (n_agents,) J_i*.
    theta : (seeds, n_agents, dim) final parameters (B w_i for the personalized learner).
    eta : (seeds, n_agents) final gain estimates.
    B : (seeds, dim, rank) final shared basis (personalized), else None.
    """

    learner: str
    seeds: tuple[int, ...]
    steps: IntArray
    average_reward: FloatArray
    optimal_average_reward: FloatArray
    theta: FloatArray
    eta: FloatArray
    B: FloatArray | None

    @property
    def gap(self) -> FloatArray:
        """(seeds, records, n_agents) optimality gap J_i* - J_i(greedy)."""
        return self.optimal_average_reward - self.average_reward

    def greedy_actions(self, features: FloatArray) -> IntArray:
        """(seeds, n_agents, n_states) final greedy actions for features (n_states, n_actions,
        dim), e.g. for `mdp.GridLayout.arrows`."""
        return mdp.greedy_actions(np.einsum("sad,knd->knsa", features, self.theta))

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows (learner, seed, step, average_reward, optimal_average_reward, gap), each
        value the mean over agents."""
        n_seeds, n_records = self.average_reward.shape[:2]
        return pd.DataFrame({
            "learner": self.learner,
            "seed": np.repeat(self.seeds, n_records),
            "step": np.tile(self.steps, n_seeds),
            "average_reward": self.average_reward.mean(axis=-1).ravel(),
            "optimal_average_reward": float(self.optimal_average_reward.mean()),
            "gap": self.gap.mean(axis=-1).ravel(),
        })


def _sample_index(cdf: FloatArray, u: FloatArray) -> IntArray:
    """Inverse-CDF draw: the first j with u < cdf[..., j] (clipped against round-off)."""
    return np.minimum(np.sum(cdf <= u[..., None], axis=-1), cdf.shape[-1] - 1)


class _Streams:
    """Uniform streams of every (seed, agent): child i of SeedSequence(seed), in blocks."""

    def __init__(self, seeds: Sequence[int], n_agents: int) -> None:
        self._gens = [[np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
                       for i in range(n_agents)] for seed in seeds]

    def draw(self, *shape: int) -> FloatArray:
        """Next uniforms, shape (seeds, n_agents, *shape)."""
        return np.array([[g.random(shape) for g in row] for row in self._gens])


class _Learner:
    """Parameters of one learner for (seeds, agents); ``theta`` (seeds, agents, dim)."""

    def __init__(self, kind: str, n_seeds: int, n_agents: int, dim: int, B: FloatArray | None,
                 config: ControlConfig) -> None:
        self.kind, self.config, self.B = kind, config, B
        self.eta = np.zeros((n_seeds, n_agents))
        if kind == "personalized":
            self.w = np.zeros((n_seeds, n_agents, B.shape[-1]))
        else:
            self._theta = np.zeros((n_seeds, n_agents, dim))

    @property
    def theta(self) -> FloatArray:
        if self.kind == "personalized":
            return steps.shared_parameter(self.B[:, None], self.w)
        return self._theta

    def update(self, delta: FloatArray, psi_t: FloatArray, alpha: float) -> None:
        """One simultaneous update of gains and parameters (right-hand sides at time t)."""
        cfg = self.config
        z = steps.td_direction(delta, psi_t)
        self.eta = differential_gain_step(self.eta, delta, alpha, cfg.c_eta)
        if self.kind == "personalized":
            G = steps.representation_gradient(z, self.w)
            w = steps.head_step(self.w, self.B[:, None], z, alpha)
            new = steps.retraction_step(steps.server_average(self.B, G, alpha, cfg.c_B), w,
                                        rebase_heads=cfg.rebase_heads)
            self.B, self.w = new.B, new.w
        elif self.kind == "independent":
            self._theta = steps.local_td_step(self._theta, z, alpha)
        else:
            self._theta = steps.fedtd_average(steps.local_td_step(self._theta, z, alpha))


def _behaviour(q: FloatArray, config: ControlConfig) -> FloatArray:
    if config.exploration == "softmax":
        return mdp.softmax_policy(q, config.temperature)
    return mdp.epsilon_greedy_policy(q, config.epsilon)


def _check_run(problem: mdp.ControlProblem, learner: str, config: ControlConfig,
               seeds: Sequence[int]) -> tuple[tuple[int, ...], int | None]:
    if not isinstance(problem, mdp.ControlProblem):
        raise ValueError(f"problem must be a ControlProblem; got {type(problem).__name__}")
    if learner not in LEARNERS:
        raise ValueError(f"learner must be one of {LEARNERS}; got {learner!r}")
    if not isinstance(config, ControlConfig):
        raise ValueError(f"config must be a ControlConfig; got {type(config).__name__}")
    seeds = tuple(check_positive_int(s, "seeds[i]", minimum=0) for s in np.atleast_1d(seeds))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty sequence of distinct ints; got {seeds}")
    rank = config.rank if config.rank is not None else problem.rank
    if learner == "personalized" and (rank is None or rank > problem.dim):
        raise ValueError(f"the personalized learner needs 1 <= rank <= dim = {problem.dim} "
                         f"(config.rank or the problem's planted rank); got {rank}")
    return seeds, rank


def run_learner(problem: mdp.ControlProblem, learner: str, config: ControlConfig,
                seeds: Sequence[int]) -> ControlTrace:
    """Train one learner on every agent for several seeds; evaluate greedy policies exactly.

    Parameters
    ----------
    problem : ControlProblem
        The N MDPs (P, rewards, features, and J* by relative value iteration).
    learner : {"personalized", "independent", "federated"}
        See the module primer.
    config : ControlConfig
        Step size, exploration, rank, recording period.
    seeds : sequence of int
        Run seeds; all seeds run at once (vectorised over seeds and agents).

    Returns
    -------
    ControlTrace
        Exact gains of the greedy policies at steps 0, record_every, ..., config.steps.

    Notes
    -----
    delta = r - eta + (psi(s', a') - psi(s, a))^T theta, theta <- theta + alpha delta psi(s, a).

    References
    ----------
    Sutton & Barto (2018), Section 10.3 (differential semi-gradient SARSA).
    """
    seeds, rank = _check_run(problem, learner, config, seeds)
    n_seeds, n_agents = len(seeds), problem.n_agents
    n_states, n_actions, dim = problem.n_states, problem.n_actions, problem.dim
    psi, rewards = problem.features, problem.rewards
    # One alias table per (agent, action): row s of chain i * n_actions + a is P_i(. | s, a).
    tables = markov.alias_tables(np.swapaxes(problem.P, 1, 2).reshape(-1, n_states, n_states))
    agent = np.arange(n_agents)
    schedule = schedules.as_schedule(config.alpha)
    B0 = None
    if learner == "personalized":
        B0 = np.array([subspace.haar_orthonormal(dim, rank, np.random.SeedSequence(seed))
                       for seed in seeds])
    model = _Learner(learner, n_seeds, n_agents, dim, B0, config)
    streams = _Streams(seeds, n_agents)

    def choose(states: IntArray, theta: FloatArray, u: FloatArray) -> IntArray:
        q = (psi[states] @ theta[..., None])[..., 0]
        return _sample_index(np.cumsum(_behaviour(q, config), axis=-1), u)

    def greedy_gain() -> FloatArray:
        q = np.einsum("sad,knd->knsa", psi, model.theta)
        return mdp.greedy_average_reward(problem.P, rewards, q)

    u = streams.draw(2)
    s = np.minimum((u[..., 0] * n_states).astype(np.int64), n_states - 1)
    a = choose(s, model.theta, u[..., 1])
    record_steps, gains = [0], [greedy_gain()]
    for start in range(0, config.steps, _BLOCK):
        block = streams.draw(min(_BLOCK, config.steps - start), 2)
        alphas = schedule.values(np.arange(start, start + block.shape[2]))
        for j, alpha in enumerate(alphas):
            theta = model.theta
            s_next = markov.sample_next_states(tables, agent * n_actions + a, s,
                                               block[:, :, j, 0])
            a_next = choose(s_next, theta, block[:, :, j, 1])
            reward = rewards[agent, s, a]
            psi_t = psi[s, a]
            delta = steps.td_error(reward, model.eta, psi_t, psi[s_next, a_next], theta)
            t = start + j + 1
            if not np.all(np.abs(delta) < _DIVERGED):
                raise LearnerDiverged(f"the {learner} learner diverged at step {t} (|TD error| "
                                      f">= {_DIVERGED:g}); lower alpha (got {schedule!r})")
            model.update(delta, psi_t, float(alpha))
            s, a = s_next, a_next
            if t % config.record_every == 0 or t == config.steps:
                record_steps.append(t)
                gains.append(greedy_gain())
    return ControlTrace(
        learner=learner, seeds=seeds, steps=np.array(record_steps),
        average_reward=np.stack(gains, axis=1),
        optimal_average_reward=np.asarray(problem.optimal.average_reward),
        theta=model.theta, eta=model.eta, B=model.B if learner == "personalized" else None)


@dataclasses.dataclass(frozen=True)
class MDPSpec:
    """Parameters of `mdp.shared_structure_mdps` except n_agents and heterogeneity.

    ``seed`` draws the problem; every (n_agents, heterogeneity) condition of an experiment uses
    the first n_agents agents of one problem per heterogeneity, all drawn from this seed.
    """

    n_states: int = 20
    n_actions: int = 4
    dim: int = 40
    rank: int = 2
    value_scale: float = 1.0
    concentration: float = 1.0
    teleport: float = 0.05
    seed: int = 0

    def build(self, n_agents: int, heterogeneity: float) -> mdp.ControlProblem:
        """The validated problem for one condition."""
        return mdp.shared_structure_mdps(
            n_agents, self.n_states, self.n_actions, self.dim, self.rank,
            heterogeneity=heterogeneity, rng=self.seed, value_scale=self.value_scale,
            concentration=self.concentration, teleport=self.teleport)


def run_experiment(spec: MDPSpec, config: ControlConfig, *, n_agents: Sequence[int],
                   heterogeneity: Sequence[float], seeds: Sequence[int],
                   learners: Sequence[str] = LEARNERS) -> pd.DataFrame:
    """Every learner on every (n_agents, heterogeneity) condition, exact gaps per seed.

    Parameters
    ----------
    spec : MDPSpec
        Problem family and problem seed.
    config : ControlConfig
        Shared hyper-parameters (equal samples and step sizes for every learner).
    n_agents, heterogeneity : sequences
        The grid of conditions (all pairs).
    seeds : sequence of int
        Run seeds (common random numbers across learners and N).
    learners : sequence of str
        Subset of LEARNERS.

    Returns
    -------
    DataFrame
        Tidy rows (learner, n_agents, heterogeneity, seed, step, average_reward,
        optimal_average_reward, gap), values averaged over the agents.
    """
    if not isinstance(spec, MDPSpec):
        raise ValueError(f"spec must be an MDPSpec; got {type(spec).__name__}")
    sizes = [check_positive_int(n, "n_agents[i]") for n in n_agents]
    if not sizes or any(learner not in LEARNERS for learner in learners):
        raise ValueError(f"n_agents must be non-empty and learners a subset of {LEARNERS}; got "
                         f"n_agents={list(n_agents)}, learners={list(learners)}")
    frames = []
    for h in heterogeneity:
        full = spec.build(max(sizes), h)
        for n in sizes:
            problem = full.subset(n)
            for learner in learners:
                frame = run_learner(problem, learner, config, seeds).to_frame()
                frames.append(frame.assign(n_agents=n, heterogeneity=float(h)))
    columns = ["learner", "n_agents", "heterogeneity", "seed", "step", "average_reward",
               "optimal_average_reward", "gap"]
    return pd.concat(frames, ignore_index=True)[columns]


_CONDITION = ["learner", "n_agents", "heterogeneity"]


def summarise(frame: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Mean gap and average reward over seeds with Student-t intervals, per condition and step.

    Returns columns learner, n_agents, heterogeneity, step, gap, gap_low, gap_high,
    average_reward, average_reward_low, average_reward_high, optimal_average_reward, n_seeds.
    """
    rows = []
    for key, group in frame.groupby([*_CONDITION, "step"], sort=True):
        row = dict(zip([*_CONDITION, "step"], key, strict=True))
        for column in ("gap", "average_reward"):
            interval = stats.mean_t_interval(group[column].to_numpy(), level=level)
            row |= {column: interval.mean, f"{column}_low": interval.low,
                    f"{column}_high": interval.high}
        row |= {"optimal_average_reward": float(group["optimal_average_reward"].iloc[0]),
                "n_seeds": len(group)}
        rows.append(row)
    return pd.DataFrame(rows)


def final_gaps(frame: pd.DataFrame, *, tail: float = 0.25) -> pd.DataFrame:
    """Per seed and condition, the gap averaged over the records in the last ``tail`` of training.

    Averaging over the tail smooths the greedy policy's record-to-record flicker.
    """
    tail = check_in_range(tail, "tail", 0.0, 1.0, low_open=True)
    last = frame.groupby(_CONDITION)["step"].transform("max")
    late = frame[frame["step"] >= (1.0 - tail) * last]
    return late.groupby([*_CONDITION, "seed"], as_index=False)["gap"].mean()


def paired_difference(frame: pd.DataFrame, worse: str, better: str, *, tail: float = 0.25,
                      level: float = 0.95) -> pd.DataFrame:
    """Tail gap of ``worse`` minus that of ``better``, paired by seed, per (n_agents, h).

    Positive means ``better`` reached the smaller gap. Pairing by seed uses the common random
    numbers. Columns n_agents, heterogeneity, difference, low, high, n_seeds.
    """
    gaps = final_gaps(frame, tail=tail).pivot_table(
        index=["n_agents", "heterogeneity", "seed"], columns="learner", values="gap")
    if worse not in gaps or better not in gaps:
        raise ValueError(f"worse and better must be learners in frame ({list(gaps.columns)}); "
                         f"got {worse!r}, {better!r}")
    rows = []
    for (n, h), group in (gaps[worse] - gaps[better]).groupby(level=[0, 1]):
        interval = stats.mean_t_interval(group.to_numpy(), level=level)
        rows.append({"n_agents": n, "heterogeneity": h, "difference": interval.mean,
                     "low": interval.low, "high": interval.high, "n_seeds": len(group)})
    return pd.DataFrame(rows)
