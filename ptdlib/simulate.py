"""The simulator: run the algorithm or a baseline on a problem, many agents and seeds at once.

Primer
------
`run` composes the steps of `ptdlib.steps` (docs/algorithm.md) over ``steps`` iterations for
every agent of ``problem`` and every seed, and returns a `Trace` of records; `pause` stops one
seed's run at iteration t and returns its state and the draws of iteration t, for redoing that
iteration by hand (notebook 04). Algorithms:

- ``personalized``: shared basis B (d x r) + per-agent heads w_i and gains eta_i (steps 2-7);
- ``fedrep``: tau head steps with B frozen, then one B step with the heads frozen;
- ``oracle``: B fixed at B* (the problem's planted basis), heads and gains learned;
- ``local``: average-reward TD on a full theta_i in R^d per agent, no communication;
- ``fedtd``: local TD on copies, replaced by their average every K iterations;
- ``lowrank_svd``: local TD, the stacked Theta projected to its best rank r every K iterations.

Communication period K (``communication_period``): a round happens after iteration t when
(t + 1) is a multiple of K and after the last iteration (runs always end synchronised), and
for the shared-basis methods only if some basis changed since the last round. Between rounds
(K > 1) personalized/fedrep agents step their own copies B^i (`steps.local_representation_step`,
no retraction), and a round averages the copies and retracts (`steps.average_local_copies`,
`steps.retraction_step`); K = 1 is step 6 of docs/algorithm.md exactly. K has no effect on local
and oracle.

Readings (docs/algorithm.md, "Readings"): ``update_order``, ``gain_update``, ``head_radius``,
``retraction`` and ``representation_step_size`` choose among the readings of the steps that
the paper's abstract leaves open (`ptdlib.steps`, module docstring); the defaults are the steps
as written, and give the same bits as a run without the switches. Each applies to the
algorithms in `READING_SCOPE` (gain_update to all); another combination is refused. Every
sampling mode honours every switch.

Sampling (``sampling``)
  ``markov``    each agent follows one trajectory of its own chain: s_0 ~ mu_i, s_{t+1} ~ P_i(s_t);
  ``iid``       every iteration draws s_t ~ mu_i afresh and s_{t+1} ~ P_i(s_t, .);
  ``expected``  the mean path: every TD direction delta phi(s) is replaced by its stationary
                expectation A_i theta + b_i + (J_i - eta) Phi^T mu_i and the reward by J_i
                (`steps.expected_td_direction`); no randomness except the initial basis.

Randomness and common random numbers. Seed s gives agent i the stream of
``SeedSequence(s).spawn(N)[i]`` (spawn key (i,)), so agent i's draws do not depend on N. From
that Generator the agent consumes, in order: one uniform for s_0 (markov only), then one
uniform per transition (two per iteration for iid: s_t, then s_{t+1}), each turned into a state
by the alias rule of `markov.sample_next_states`. Reward noise (only if ``problem.reward_noise``
> 0) comes from a separate stream, the child ``SeedSequence(s, spawn_key=(i, 0))``, one standard
normal per iteration. The random initial basis (Haar) comes from the seed's root stream
``default_rng(s)``, never from an agent's. Chunking of the bulk draws therefore never changes
the results, and a seed's run does not depend on the other seeds run with it. Same seed and
problem, any machine: bit-identical traces. The kernels use exact IEEE arithmetic (unless
``PTD_FASTMATH=1``, see `ptdlib._kernels`), and the sampled path uses no BLAS or LAPACK: the
QR of B_0, the low-rank projection and the recorded distances are compiled routines of
`ptdlib._kernels`. Heads, gains and full parameters start at 0.

Running (Polyak-Ruppert) average (``average_from``). With ``average_from = a`` the run also
keeps, per seed and agent, the average of the iterates theta_t^i for t = a, ..., T (steps - a + 1
of them; theta_t^i = B_t w_t^i for the shared-basis methods, between rounds with K > 1 the
agent's own copy B_t^i w_t^i, and theta_t^i for the full-parameter ones; theta_0 = 0). The
kernels add the iterates to a running sum after every iteration from a on, at O(dim rank) per
agent-iteration (one serial pass over the agents, also when their blocks run in parallel: about
half the default throughput at N = 256, d = 32, r = 4); `Trace.averaged_theta` and
`Trace.averaged_parameter_error` report it. With the
default ``average_from=None`` nothing is summed, and the traces are bit-identical to a run
without the option. It honours every sampling mode, algorithm and reading; it equals
`stats.polyak_ruppert_average` of the per-iteration iterates.

Divergence. After every iteration each seed's updated heads, gains and parameters must be
finite with absolute entries <= ``divergence_threshold`` (default 1e6 times the problem scale
max(1, max |r_i(s)|, max ||theta_i*||, reward_noise)); a seed that fails stops there and
``Trace.diverged[s]`` holds the number of iterations completed when it failed (else -1).

Speed and memory. Markov/iid runs use the numba kernels of `ptdlib._kernels`: O(rank) per
agent-iteration for personalized with K = 1 (O(dim rank) with K > 1 and for the full-parameter
baselines), seeds in parallel, or blocks of agents in parallel when there are fewer seeds than
threads and at least ``AGENT_PARALLEL_MIN`` agents (the results are the same either way). Alias
tables are built once per distinct chain (agents of `Problem.from_pool` share them). Uniforms
and normals are drawn per chunk of iterations (at most ``DRAW_BUDGET`` numbers per buffer) and
only the records are kept, so memory does not grow with ``steps``. The first call compiles the
kernels (cached on disk by numba afterwards). The mean-path mode composes the numpy functions
of `ptdlib.steps` directly, seed by seed.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd

from ptdlib import _kernels as kern
from ptdlib import markov, schedules, steps, subspace
from ptdlib._validation import (
    FloatArray,
    IntArray,
    check_choice,
    check_in_range,
    check_orthonormal,
    check_positive_int,
)

SHARED_ALGORITHMS = {"personalized": kern.PERSONALIZED, "fedrep": kern.FEDREP,
                     "oracle": kern.ORACLE}
THETA_ALGORITHMS = {"local": kern.LOCAL, "fedtd": kern.FEDTD, "lowrank_svd": kern.LOWRANK}
ALGORITHMS = (*SHARED_ALGORITHMS, *THETA_ALGORITHMS)
SAMPLINGS = ("markov", "iid", "expected")
#: Divergence threshold as a multiple of the problem scale.
DIVERGENCE_FACTOR = 1e6
#: Largest number of random numbers per chunk buffer (2^22 float64 = 32 MiB).
DRAW_BUDGET = 2**22
#: With fewer seeds than threads, K = 1 runs with at least this many agents (and >= n_states)
#: run the agents' blocks in parallel instead of the seeds (same results either way).
AGENT_PARALLEL_MIN = 1024
#: The algorithms each reading's non-default value means something for (docs/algorithm.md,
#: "Readings"); ``gain_update`` applies to every algorithm. heads_first needs a head step and a
#: basis step in the same iteration (fedrep alternates them already); a radius needs heads; a
#: retraction or a basis schedule needs a basis that moves (oracle's is B*).
READING_SCOPE = {"update_order": ("personalized",),
                 "head_radius": ("personalized", "fedrep", "oracle"),
                 "retraction": ("personalized", "fedrep"),
                 "representation_step_size": ("personalized", "fedrep")}
#: The keyword arguments of `run` that make up a reading (their defaults are `run`'s).
READING_SWITCHES = ("update_order", "gain_update", "head_radius", "retraction",
                    "representation_step_size", "rebase_heads")
METRICS = ("subspace_distance", "subspace_distance_frobenius", "parameter_error",
           "relative_parameter_error", "head_error", "gain_error")


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """Records and final state of a simulation (arrays indexed by seed first).

    Parameters
    ----------
    algorithm, sampling : str
        What was run.
    seeds : (S,) int
        The seed values, in order.
    record_steps : (R,) int
        Iterations completed at each record: 0, record_every, 2 record_every, ..., and steps.
    subspace_distance, subspace_distance_frobenius : (S, R) or None
        dist(B_t, B*) = ||(I - B* B*^T) B_t||_2 and its Frobenius version, for the basis of the
        method: B_t (personalized, fedrep; B* for oracle); the top-r left singular vectors of
        the stacked Theta_t (local, lowrank_svd; NaN while sigma_r(Theta_t) = 0, e.g. at step
        0); for fedtd, which has no r-dimensional representation, the sine of the angle
        between the average parameter and span(B*) (NaN while it is 0). None when the problem
        has no B_star.
    parameter_error : (S, R)
        (1/N) sum_i ||theta_i - theta_i*||^2, theta_i = B w_i for the shared-basis methods.
    relative_parameter_error : (S, R)
        The same with each agent's term divided by ||theta_i*||^2 (agents with theta_i* = 0
        left out; NaN if all are).
    head_error : (S, R) or None
        (1/N) sum_i ||w_i - B^T theta_i*||^2, the head part of the parameter error (its
        subspace part is (1/N) sum_i ||(I - B B^T) theta_i*||^2); None for the methods without
        heads (local, fedtd, lowrank_svd).
    gain_error : (S, R)
        (1/N) sum_i (eta_i - J_i)^2.
    theta : (S, N, dim)
        Final parameters (B w_i for the shared-basis methods).
    eta : (S, N)
        Final gains.
    B : (S, dim, rank) or None
        Final basis (for local and lowrank_svd the top-r left singular vectors of the final
        Theta); None for fedtd and when no rank is known.
    heads : (S, N, rank) or None
        Final heads; None for the methods without heads.
    diverged : (S,) int
        Iterations completed when the seed diverged, or -1.
    divergence_threshold : float
        The bound on the iterates' absolute entries used for ``diverged``.
    settings : mapping
        Every option of the run (rank, communication_period, rebase_heads, c_eta, c_B, tau,
        step_size, steps, record_every, n_agents, average_from, and the readings update_order,
        gain_update, head_radius, retraction, representation_step_size).
    averaged_theta : (S, N, dim) or None
        With ``average_from = a``: theta_bar_i = (1 / (T - a + 1)) sum_{t=a}^{T} theta_t^i, the
        Polyak-Ruppert average of agent i's iterates (module docstring); NaN for a diverged
        seed. None when ``average_from`` is None.
    averaged_parameter_error : (S,) or None
        (1/N) sum_i ||theta_bar_i - theta_i*||^2 (NaN for a diverged seed); None when off.

    Notes
    -----
    Raw arrays hold NaN at the records taken at or after a seed's divergence step, and a
    diverged seed's final state is its state at that step. Use `valid` or `to_frame`, which
    drops those records, rather than the NaNs.
    """

    algorithm: str
    sampling: str
    seeds: IntArray
    record_steps: IntArray
    subspace_distance: FloatArray | None
    subspace_distance_frobenius: FloatArray | None
    parameter_error: FloatArray
    relative_parameter_error: FloatArray
    head_error: FloatArray | None
    gain_error: FloatArray
    theta: FloatArray
    eta: FloatArray
    B: FloatArray | None
    heads: FloatArray | None
    diverged: IntArray
    divergence_threshold: float
    settings: Mapping[str, Any]
    averaged_theta: FloatArray | None = None
    averaged_parameter_error: FloatArray | None = None

    @property
    def valid(self) -> np.ndarray:
        """(S, R) bool: records taken before the seed diverged."""
        limit = np.where(self.diverged >= 0, self.diverged, np.iinfo(np.int64).max)
        return self.record_steps[None, :] < limit[:, None]

    def to_frame(self, long: bool = False) -> pd.DataFrame:
        """The records before divergence as a table (post-divergence records are dropped).

        Parameters
        ----------
        long : bool, optional
            False (default): one row per (seed, record) with a column per metric present (see
            `METRICS`). True: one row per (seed, record, metric) with columns metric, value.

        Returns
        -------
        pandas.DataFrame
            Columns algorithm, seed, step, diverged (bool: the seed diverged during the run),
            then the metrics (wide) or metric and value (long).
        """
        seed_idx, rec_idx = np.nonzero(self.valid)
        columns: dict[str, Any] = {
            "algorithm": self.algorithm,
            "seed": self.seeds[seed_idx],
            "step": self.record_steps[rec_idx],
            "diverged": self.diverged[seed_idx] >= 0,
        }
        metrics = [name for name in METRICS if getattr(self, name) is not None]
        for name in metrics:
            columns[name] = getattr(self, name)[seed_idx, rec_idx]
        frame = pd.DataFrame(columns)
        if long:
            frame = frame.melt(id_vars=["algorithm", "seed", "step", "diverged"],
                               value_vars=metrics, var_name="metric", value_name="value")
        return frame


@dataclasses.dataclass(frozen=True)
class _Config:
    """Validated options of one run."""

    algorithm: str
    sampling: str
    steps: int
    schedule: schedules.Schedule
    seeds: tuple[int, ...]
    rank: int | None
    record_steps: IntArray
    period: int
    rebase_heads: bool
    c_eta: float
    c_B: float
    tau: int
    threshold: float
    init_subspace: FloatArray | None
    progress: bool
    update_order: str
    gain_update: str
    head_radius: float | None
    retraction: str
    representation: schedules.Schedule | None  # beta_t; None: c_B alpha_t
    average_from: int | None = None  # first averaged iterate t (None: no running average)

    @property
    def averaging_start(self) -> int:
        """The kernels' avg_from: iterations t with t + 1 >= it add theta_{t+1} (off: never)."""
        return np.iinfo(np.int64).max if self.average_from is None else max(self.average_from, 1)

    @property
    def shared(self) -> bool:
        return self.algorithm in SHARED_ALGORITHMS

    @property
    def code(self) -> int:
        return {**SHARED_ALGORITHMS, **THETA_ALGORITHMS}[self.algorithm]

    @property
    def switches(self) -> tuple[int, int, int, float]:
        """The reading as the kernels take it: (order, gain, retraction) codes and the radius."""
        return (steps.UPDATE_ORDERS.index(self.update_order),
                steps.GAIN_UPDATES.index(self.gain_update),
                steps.RETRACTIONS.index(self.retraction),
                np.inf if self.head_radius is None else self.head_radius)

    def betas(self, alphas: FloatArray, t: IntArray) -> FloatArray:
        """The basis steps at iterations t: c_B alpha_t, or beta_t of the representation
        schedule."""
        if self.representation is None:
            return self.c_B * alphas
        return self.representation.values(t, name="representation_step_size", symbol="beta_t")


def _check_seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    """An int k means seeds 0..k-1; a sequence gives distinct non-negative seed values."""
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        return tuple(range(check_positive_int(seeds, "seeds")))
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence | np.ndarray):
        raise ValueError(f"seeds must be a count >= 1 or a sequence of seed values; got {seeds!r}")
    values = tuple(check_positive_int(s, "every seed value", minimum=0) for s in seeds)
    if not values or len(set(values)) != len(values):
        raise ValueError(f"seeds must be a non-empty sequence of distinct values; got {seeds!r}")
    return values


def _check_rank(problem: Any, algorithm: str, rank: int | None) -> int | None:
    planted = None if problem.B_star is None else problem.B_star.shape[1]
    if rank is None:
        rank = planted if planted is not None else problem.rank
    else:
        rank = check_positive_int(rank, "rank")
        if planted is not None and rank != planted:
            raise ValueError(f"rank must equal the rank of problem.B_star ({planted}); got {rank}")
    if rank is None and algorithm not in ("local", "fedtd"):
        raise ValueError(f"rank must be given for algorithm {algorithm!r}: the problem has none")
    if rank is not None and rank > problem.dim:
        raise ValueError(f"rank must be <= dim = {problem.dim}; got {rank}")
    if algorithm == "oracle" and problem.B_star is None:
        raise ValueError("algorithm 'oracle' needs a problem with B_star; got B_star = None")
    return rank


def _record_steps(steps: int, record_every: int | None, period: int, synced: bool) -> IntArray:
    """0, record_every, 2 record_every, ... and steps; multiples of K when rounds are periodic."""
    if record_every is None:
        unit = period if synced else 1
        record_every = min(steps, unit * max(1, steps // (100 * unit)))
    else:
        record_every = check_positive_int(record_every, "record_every")
        if record_every > steps:
            raise ValueError(f"record_every must lie in [1, steps = {steps}]; got {record_every}")
        if synced and record_every % period:
            raise ValueError(f"record_every must be a multiple of communication_period = "
                             f"{period} (records are taken after a round); got {record_every}")
    return np.unique(np.append(np.arange(0, steps + 1, record_every), steps)).astype(np.int64)


def _check_init(init_subspace: Any, algorithm: str, dim: int,
                rank: int | None) -> FloatArray | None:
    if init_subspace is None:
        return None
    if algorithm not in ("personalized", "fedrep"):
        raise ValueError(f"init_subspace applies to 'personalized' and 'fedrep' only; got it for "
                         f"{algorithm!r}")
    B0 = check_orthonormal(init_subspace, "init_subspace")
    if B0.shape != (dim, rank):
        raise ValueError(f"init_subspace must have shape (dim, rank) = {(dim, rank)}; got "
                         f"{B0.shape}")
    return np.array(B0)


def _check_reading(algorithm: str, options: dict[str, Any]) -> dict[str, Any]:
    """The readings' switches, validated, and refused for an algorithm they mean nothing for."""
    radius, beta = options["head_radius"], options["representation_step_size"]
    reading = {
        "update_order": check_choice(options["update_order"], "update_order",
                                     steps.UPDATE_ORDERS),
        "gain_update": check_choice(options["gain_update"], "gain_update", steps.GAIN_UPDATES),
        "head_radius": None if radius is None else _positive(radius, "head_radius"),
        "retraction": check_choice(options["retraction"], "retraction", steps.RETRACTIONS),
        "representation": None if beta is None else schedules.as_schedule(
            beta, name="representation_step_size"),
    }
    given = {"update_order": reading["update_order"] != steps.UPDATE_ORDERS[0],
             "head_radius": radius is not None,
             "retraction": reading["retraction"] != steps.RETRACTIONS[0],
             "representation_step_size": beta is not None}
    for name, scope in READING_SCOPE.items():
        if given[name] and algorithm not in scope:
            value = reading["representation"] if name == "representation_step_size" \
                else options[name]
            raise ValueError(f"{name}={value!r} applies to {', '.join(map(repr, scope))} only; "
                             f"got it with algorithm {algorithm!r}")
    if beta is not None and options["c_B"] != 1.0:
        raise ValueError(f"c_B must be 1.0 with representation_step_size (beta_t replaces "
                         f"c_B alpha_t); got c_B={options['c_B']!r}")
    return reading


def _problem_scale(problem: Any) -> float:
    return float(max(1.0, np.max(np.abs(problem.rewards)),
                     np.max(np.linalg.norm(problem.theta_star, axis=1)), problem.reward_noise))


def _positive(value: Any, name: str) -> float:
    return check_in_range(value, name, 0.0, np.inf, low_open=True, high_open=True)


def _check_average_from(value: Any, steps_: int) -> int | None:
    """None, or the first averaged iterate in [0, steps)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) \
            or not 0 <= value < steps_:
        raise ValueError(f"average_from must be None or an integer in [0, steps = {steps_}); "
                         f"got {value!r}")
    return int(value)


def _configure(problem: Any, algorithm: str, sampling: str, options: dict[str, Any]) -> _Config:
    """Validate every argument of `run` (ValueError names the argument and the value)."""
    for field in ("P", "rewards", "features", "mu", "average_reward", "theta_star", "B_star"):
        if not hasattr(problem, field):
            raise ValueError(f"problem must be a ptdlib.problems.Problem; got "
                             f"{type(problem).__name__} without {field!r}")
    algorithm = check_choice(algorithm, "algorithm", ALGORITHMS)
    sampling = check_choice(sampling, "sampling", SAMPLINGS)
    steps_ = check_positive_int(options["steps"], "steps")
    period = check_positive_int(options["communication_period"], "communication_period")
    rank = _check_rank(problem, algorithm, options["rank"])
    synced = algorithm in ("personalized", "fedrep", "fedtd", "lowrank_svd")
    period = period if synced else 1  # K has no effect on local and oracle
    threshold = options["divergence_threshold"]
    threshold = (DIVERGENCE_FACTOR * _problem_scale(problem) if threshold is None
                 else _positive(threshold, "divergence_threshold"))
    return _Config(
        algorithm=algorithm, sampling=sampling, steps=steps_,
        schedule=schedules.as_schedule(options["step_size"]),
        seeds=_check_seeds(options["seeds"]), rank=rank,
        record_steps=_record_steps(steps_, options["record_every"], period, synced),
        period=period, rebase_heads=bool(options["rebase_heads"]),
        c_eta=_positive(options["c_eta"], "c_eta"), c_B=_positive(options["c_B"], "c_B"),
        tau=check_positive_int(options["tau"], "tau"), threshold=threshold,
        init_subspace=_check_init(options["init_subspace"], algorithm, problem.dim, rank),
        progress=bool(options["progress"]),
        average_from=_check_average_from(options["average_from"], steps_),
        **_check_reading(algorithm, options))


@dataclasses.dataclass
class _State:
    """Iterates and records of every seed, mutated in place by the kernels."""

    B: FloatArray  # (S, dim, rank) server basis (shared-basis methods)
    B_local: FloatArray  # (S, N, dim, rank) agents' copies when K > 1, else (S, 0, dim, rank)
    w: FloatArray  # (S, N, rank)
    eta: FloatArray  # (S, N)
    theta: FloatArray  # (S, N, dim) (full-parameter methods), else (S, 0, dim)
    states: IntArray  # (S, N) current states (markov)
    diverged: IntArray  # (S,)
    records: FloatArray  # (S, R, N_METRICS)
    distances: FloatArray  # (2, S, R): spectral, Frobenius
    theta_sum: FloatArray  # (S, N, dim) running sum of the averaged iterates, else (S, 0, dim)


def _agent_streams(seed: int, n_agents: int,
                   noise: bool) -> tuple[list[np.random.Generator], list[np.random.Generator]]:
    """Agent i's state stream SeedSequence(seed).spawn(N)[i] and, if needed, its noise stream
    SeedSequence(seed, spawn_key=(i, 0))."""
    transitions = [np.random.default_rng(child)
                   for child in np.random.SeedSequence(seed).spawn(n_agents)]
    rewards = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, 0)))
               for i in range(n_agents)] if noise else []
    return transitions, rewards


def _mu_tables(mu: FloatArray) -> markov.AliasTables:
    """Alias tables of the rows mu_i, packed n rows per (n x n) block (padded with uniform rows).

    Agent i's table is row i % n of block i // n; the construction is row by row, so the table
    of mu_i equals that of any chain whose rows are all mu_i.
    """
    n_agents, n = mu.shape
    blocks = -(-n_agents // n)
    rows = np.full((blocks * n, n), 1.0 / n)
    rows[:n_agents] = mu
    return markov.alias_tables(rows.reshape(blocks, n, n))


def _packed_tables(rows: FloatArray) -> FloatArray:
    """(..., n, 2) alias tables of rows (..., n) with (prob, alias) side by side: one cache line
    per draw; built straight into the packed layout (states < 2^53 are exact in float64)."""
    n = rows.shape[-1]
    table = np.empty((*rows.shape, 2))
    flat = table.reshape(-1, n, 2)
    kern.alias_rows(np.ascontiguousarray(rows).reshape(-1, n), flat[..., 0], flat[..., 1])
    return table


def _distinct_chains(P: FloatArray) -> tuple[IntArray, IntArray]:
    """(first agent of each distinct P_i, each agent's chain number) so that agents copied from a
    pool share one alias table; falls back to one chain per agent if fingerprints collide."""
    N = P.shape[0]
    flat = P.reshape(N, -1)
    weights = 1.0 + np.arange(flat.shape[1]) / flat.shape[1]  # any fixed generic weights
    _, first, chain = np.unique(flat @ weights, return_index=True, return_inverse=True)
    if first.size == N:  # all distinct: keep the agents' order and avoid copying P
        return np.arange(N), np.arange(N)
    block = max(1, DRAW_BUDGET // flat.shape[1])
    for start in range(0, N, block):
        stop = min(N, start + block)
        if not np.array_equal(flat[start:stop], flat[first[chain[start:stop]]]):
            return np.arange(N), np.arange(N)
    return first, chain.astype(np.int64)


def _kernel_arrays(problem: Any) -> types.SimpleNamespace:
    """Writable contiguous copies of the problem's arrays, in the kernels' dtypes."""
    theta_star = np.array(problem.theta_star, dtype=np.float64)
    norms = np.sum(theta_star**2, axis=1)
    nonzero = norms > 0
    rel_weight = np.where(nonzero, 1.0 / np.where(nonzero, norms, 1.0), 0.0) / max(nonzero.sum(), 1)
    return types.SimpleNamespace(
        Phi=np.array(problem.features, dtype=np.float64),
        rewards=np.array(problem.rewards, dtype=np.float64),
        theta_star=theta_star, J=np.array(problem.average_reward, dtype=np.float64),
        rel_weight=rel_weight, any_nonzero=bool(nonzero.any()),
        sigma=float(problem.reward_noise))


def _initial_state(problem: Any, cfg: _Config) -> _State:
    S, N, d = len(cfg.seeds), problem.n_agents, problem.dim
    r = cfg.rank or 1
    if cfg.algorithm == "oracle":
        B = np.broadcast_to(problem.B_star, (S, d, r)).copy()
    elif cfg.init_subspace is not None:
        B = np.broadcast_to(cfg.init_subspace, (S, d, r)).copy()
    elif cfg.shared:
        B = np.stack([subspace.haar_orthonormal(d, r, seed) for seed in cfg.seeds])
    else:
        B = np.zeros((S, d, r))
    copies = cfg.shared and cfg.period > 1
    R = len(cfg.record_steps)
    return _State(
        B=B, B_local=np.repeat(B[:, None], N if copies else 0, axis=1),
        w=np.zeros((S, N, r)), eta=np.zeros((S, N)),
        theta=np.zeros((S, 0 if cfg.shared else N, d)), states=np.zeros((S, N), dtype=np.int64),
        diverged=np.full(S, -1, dtype=np.int64), records=np.full((S, R, kern.N_METRICS), np.nan),
        distances=np.full((2, S, R), np.nan),
        theta_sum=np.zeros((S, 0 if cfg.average_from is None else N, d)))


def _snapshot_width(cfg: _Config, dim: int) -> int:
    """Columns of a record snapshot: the basis (rank), Theta Theta^T (dim) or the mean (1)."""
    if cfg.shared:
        return cfg.rank
    return 1 if cfg.algorithm == "fedtd" else dim


def _subspace_distances(snapshots: FloatArray, cfg: _Config,
                        B_star: FloatArray | None) -> FloatArray:
    """(2, S, Rc) spectral and Frobenius distances to B* from (S, Rc, dim, m) snapshots.

    Compiled (`_kernels.snapshot_distances`), without BLAS or LAPACK, so that the recorded
    distances are the same bits on every machine.
    """
    out = np.full((2, *snapshots.shape[:2]), np.nan)
    if B_star is None:  # then rank may be None too; there is nothing to compare with
        return out
    kind = kern.BASIS if cfg.shared else kern.MEAN if cfg.algorithm == "fedtd" else kern.GRAM
    kern.snapshot_distances(snapshots, np.ascontiguousarray(B_star), kind, out)
    return out


def _record_now(st: _State, s: int, g: int, cfg: _Config, arr: types.SimpleNamespace,
                B_star: FloatArray | None) -> None:
    """Record g of seed s from Python (step 0 and the mean-path mode)."""
    snapshot = np.full((1, 1, arr.Phi.shape[1], _snapshot_width(cfg, arr.Phi.shape[1])), np.nan)
    if cfg.shared:
        kern.record_shared(np.ascontiguousarray(st.B[s].T), st.w[s], st.eta[s], arr.theta_star,
                           arr.J, arr.rel_weight, st.records[s, g], snapshot[0, 0])
    else:
        kern.record_theta(st.theta[s], st.eta[s], arr.theta_star, arr.J, arr.rel_weight,
                          cfg.code, st.records[s, g], snapshot[0, 0])
    st.distances[:, s, g] = _subspace_distances(snapshot, cfg, B_star)[:, 0, 0]


def _record_positions(record_steps: IntArray, t: int, length: int) -> tuple[IntArray, int, int]:
    """record_at[j] = global record index after chunk iteration j (or -1), first index, count."""
    inside = np.flatnonzero((record_steps > t) & (record_steps <= t + length))
    record_at = np.full(length, -1, dtype=np.int64)
    record_at[record_steps[inside] - t - 1] = inside
    return record_at, int(inside[0]) if inside.size else 0, int(inside.size)


def _fill_draws(streams: list, live: np.ndarray, length: int, out: FloatArray,
                normal: bool) -> None:
    """One chunk of draws: each agent's Generator fills its own contiguous block of ``out``."""
    for s in np.flatnonzero(live):
        for i, generator in enumerate(streams[s]):
            if normal:
                generator.standard_normal(out=out[s, i, :length])
            else:
                generator.random(out=out[s, i, :length])


def _sampling_tables(problem: Any) -> types.SimpleNamespace:
    """Packed alias tables of the distinct chains (P and mu) and each agent's chain number."""
    P, n = np.asarray(problem.P), problem.n_states
    first, chain = _distinct_chains(P)
    mu_tables = _mu_tables(np.asarray(problem.mu)[first])
    mu_packed = np.stack([mu_tables.prob, mu_tables.alias], axis=-1)  # (prob, alias) per column
    return types.SimpleNamespace(
        P=_packed_tables(P[first] if first.size < P.shape[0] else P), chain=chain,
        mu=mu_packed.reshape(-1, 1, n, 2)[:first.size].copy(), mu_tables=mu_tables)


def _sampler(problem: Any, cfg: _Config, arr: types.SimpleNamespace,
             longest: int) -> types.SimpleNamespace:
    """What every chunk of a sampled run shares: alias tables, agent streams, draw buffers.

    Chunks hold at most ``longest`` iterations and at most ``DRAW_BUDGET`` numbers per buffer;
    ``by_agents`` says which kernel advances them (module docstring, "Speed and memory").
    """
    S, N, n = len(cfg.seeds), problem.n_agents, problem.n_states
    per_step = 1 if cfg.sampling == "markov" else 2
    noisy = arr.sigma > 0
    length_max = max(1, min(longest, DRAW_BUDGET // (S * N * per_step)))
    return types.SimpleNamespace(
        tables=_sampling_tables(problem),
        streams=[_agent_streams(seed, N, noisy) for seed in cfg.seeds],
        length_max=length_max, uniforms=np.empty((S, N, length_max, per_step)),
        normals=np.empty((S, N, length_max if noisy else 0)),
        # Fewer seeds than threads and many agents: parallel over blocks of agents, not seeds.
        by_agents=(cfg.shared and cfg.period == 1 and numba.get_num_threads() > S
                   and max(n, AGENT_PARALLEL_MIN) <= N))


def _draw_initial_states(st: _State, sampler: types.SimpleNamespace, n_states: int) -> None:
    """Markov s_0 ~ mu_i, from the first uniform of each agent's state stream."""
    tables = sampler.tables
    u0 = np.array([[g.random() for g in transitions] for transitions, _ in sampler.streams])
    st.states[:] = markov.sample_next_states(tables.mu_tables, tables.chain // n_states,
                                             tables.chain % n_states, u0)


def _advance_chunk(problem: Any, cfg: _Config, st: _State, arr: types.SimpleNamespace,
                   sampler: types.SimpleNamespace, t: int, length: int) -> None:
    """Iterations t .. t + length - 1 of every live seed: one chunk of a sampled run.

    Draws the chunk's uniforms (and reward normals) of the live seeds, lets one compiled kernel
    consume them (updating ``st`` in place and filling the records that fall in the chunk), then
    computes the subspace distances of those records from the kernel's snapshots.
    """
    S, d = len(cfg.seeds), problem.dim
    live = st.diverged < 0
    _fill_draws([tr for tr, _ in sampler.streams], live, length, sampler.uniforms, normal=False)
    if arr.sigma > 0:
        _fill_draws([nz for _, nz in sampler.streams], live, length, sampler.normals,
                    normal=True)
    record_at, offset, count = _record_positions(cfg.record_steps, t, length)
    snapshots = np.full((S, max(count, 1), d, _snapshot_width(cfg, d)), np.nan)
    tables = sampler.tables
    iterations = np.arange(t, t + length)
    alphas = cfg.schedule.values(iterations)
    common = (arr.Phi, arr.rewards, tables.P, tables.mu, tables.chain,
              0 if cfg.sampling == "markov" else 1, sampler.uniforms, sampler.normals,
              arr.sigma, alphas)
    tail = (record_at, offset, arr.theta_star, arr.J, arr.rel_weight, st.records, snapshots,
            cfg.averaging_start, st.theta_sum)
    if sampler.by_agents:
        kern.shared_chunk_by_agents(st.B, st.w, st.eta, st.states, st.diverged, *common,
                                    cfg.betas(alphas, iterations), t, cfg.code, cfg.tau,
                                    cfg.rebase_heads, cfg.c_eta, cfg.switches, cfg.threshold,
                                    *tail)
    elif cfg.shared:
        kern.shared_chunk(st.B, st.B_local, st.w, st.eta, st.states, st.diverged, *common,
                          cfg.betas(alphas, iterations), t, cfg.steps, cfg.period, cfg.code,
                          cfg.tau, cfg.rebase_heads, cfg.c_eta, cfg.switches, cfg.threshold,
                          *tail)
    else:
        kern.theta_chunk(st.theta, st.eta, st.states, st.diverged, *common, t, cfg.steps,
                         cfg.period, cfg.code, cfg.rank or 1, cfg.c_eta, cfg.switches[1],
                         cfg.threshold, *tail)
    if count:
        st.distances[:, :, offset:offset + count] = _subspace_distances(
            snapshots[:, :count], cfg, problem.B_star)


def _run_sampled(problem: Any, cfg: _Config, st: _State,
                 arr: types.SimpleNamespace) -> types.SimpleNamespace:
    """Markov or i.i.d. sampling: bulk draws per chunk, then a compiled kernel consumes them.

    Returns the sampler, whose streams then hold exactly the draws of iteration ``steps`` next.
    """
    sampler = _sampler(problem, cfg, arr, cfg.steps)
    if cfg.sampling == "markov":
        _draw_initial_states(st, sampler, problem.n_states)
    progress = _progress_bar(cfg, cfg.steps)
    for t in range(0, cfg.steps, sampler.length_max):
        length = min(sampler.length_max, cfg.steps - t)
        _advance_chunk(problem, cfg, st, arr, sampler, t, length)
        progress.update(length)
    progress.close()
    return sampler


def _progress_bar(cfg: _Config, total: int) -> Any:
    """A tqdm bar when asked for (tqdm.auto: a widget in notebooks), else a silent one."""
    if not cfg.progress:  # plain tqdm: tqdm.auto warns in notebooks without ipywidgets
        from tqdm import tqdm

        return tqdm(total=total, disable=True)
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc=f"{cfg.algorithm} ({cfg.sampling})")


def _within(threshold: float, *arrays: np.ndarray) -> bool:
    """Every entry finite with absolute value <= threshold (the divergence test)."""
    return all(bool(np.all(np.abs(a) <= threshold)) for a in arrays)


def _expected_gain(cfg: _Config, eta: FloatArray, J: FloatArray, alpha: float) -> FloatArray:
    """Step 3 on the mean path in the run's reading (the two coincide: E[delta] = J - eta)."""
    if cfg.gain_update == "td":
        return steps.differential_gain_step(eta, steps.expected_td_error(J, eta), alpha,
                                            cfg.c_eta)
    return steps.gain_step(eta, J, alpha, cfg.c_eta)


def _expected_head_step(w: FloatArray, basis: FloatArray, z: FloatArray, alpha: float,
                        cfg: _Config) -> FloatArray:
    """Step 4 on the mean path, then the projection onto ||w|| <= head_radius if any."""
    w_next = steps.head_step(w, basis, z, alpha)
    return w_next if cfg.head_radius is None else steps.head_projection(w_next, cfg.head_radius)


def _expected_retraction(cfg: _Config, B_tilde: FloatArray, w: FloatArray) -> steps.Retraction:
    """Step 7 on the mean path in the run's reading; re-based heads go back into the ball."""
    retract = steps.polar_retraction_step if cfg.retraction == "polar" else steps.retraction_step
    out = retract(B_tilde, w, rebase_heads=cfg.rebase_heads)
    if cfg.rebase_heads and cfg.head_radius is not None:
        return steps.Retraction(B=out.B, w=steps.head_projection(out.w, cfg.head_radius))
    return out


def _expected_shared_step(st: _State, s: int, t: int, alpha: float, beta: float | None,
                          cfg: _Config, mean: types.SimpleNamespace) -> bool:
    """One mean-path iteration of personalized, fedrep or oracle for seed s (steps 2-7 of
    docs/algorithm.md, in the run's reading; ``beta`` the basis step, None for c_B alpha)."""
    copies = st.B_local.shape[1] > 0
    basis = st.B_local[s] if copies else st.B[s]
    w, eta = st.w[s], st.eta[s]
    z = steps.expected_td_direction(mean.A, mean.b, mean.Phi_mu, mean.J, eta,
                                    steps.shared_parameter(basis, w))
    rep = cfg.algorithm == "personalized" or (
        cfg.algorithm == "fedrep" and steps.fedrep_updates_representation(t, cfg.tau))
    new_w = w if (cfg.algorithm == "fedrep" and rep) else _expected_head_step(w, basis, z,
                                                                              alpha, cfg)
    if rep:
        if cfg.update_order == "heads_first":  # E[delta' phi(s)] from the new head, old gain
            z, w = steps.expected_td_direction(mean.A, mean.b, mean.Phi_mu, mean.J, eta,
                                               steps.shared_parameter(basis, new_w)), new_w
        G = steps.representation_gradient(z, w)
        step, ratio = (alpha, cfg.c_B) if beta is None else (beta, 1.0)
        if copies:
            st.B_local[s] = steps.local_representation_step(st.B_local[s], G, step, ratio)
        else:
            B_tilde = steps.server_average(st.B[s], G, step, ratio)
    st.eta[s] = _expected_gain(cfg, eta, mean.J, alpha)
    ok = _within(cfg.threshold, st.eta[s], new_w)
    if ok and kern._communicates(t, cfg.steps, cfg.period, cfg.code, cfg.tau):
        if copies:
            B_tilde = steps.average_local_copies(st.B_local[s])
        try:
            retracted = _expected_retraction(cfg, B_tilde, new_w)
        except ValueError:  # non-finite or rank-deficient B~: the kernels' divergence rule
            return False
        st.B[s], new_w = retracted.B, retracted.w
        if copies:
            st.B_local[s] = retracted.B
        ok = _within(cfg.threshold, new_w)
    st.w[s] = new_w
    return ok


def _expected_theta_step(st: _State, s: int, t: int, alpha: float, beta: float | None,
                         cfg: _Config, mean: types.SimpleNamespace) -> bool:
    """One mean-path iteration of local, fedtd or lowrank_svd for seed s (no basis: ``beta``
    unused)."""
    z = steps.expected_td_direction(mean.A, mean.b, mean.Phi_mu, mean.J, st.eta[s], st.theta[s])
    st.eta[s] = _expected_gain(cfg, st.eta[s], mean.J, alpha)
    st.theta[s] = steps.local_td_step(st.theta[s], z, alpha)
    if not _within(cfg.threshold, st.eta[s], st.theta[s]):
        return False
    if cfg.algorithm != "local" and ((t + 1) % cfg.period == 0 or t + 1 == cfg.steps):
        st.theta[s] = (steps.fedtd_average(st.theta[s]) if cfg.algorithm == "fedtd"
                       else steps.lowrank_projection(st.theta[s], cfg.rank).theta)
    return True


def _agent_parameters(st: _State, s: int, cfg: _Config) -> FloatArray:
    """Seed s's theta_i (N, dim): B w_i, each agent's own copy B^i w_i when K > 1, or theta_i."""
    if not cfg.shared:
        return st.theta[s]
    if st.B_local.shape[1] > 0:
        return np.einsum("ndr,nr->nd", st.B_local[s], st.w[s])
    return st.w[s] @ st.B[s].T


def _run_expected(problem: Any, cfg: _Config, st: _State, arr: types.SimpleNamespace) -> None:
    """Mean-path mode: the steps of ptdlib.steps with expected TD directions, seed by seed."""
    mean = types.SimpleNamespace(A=np.asarray(problem.A), b=np.asarray(problem.b),
                                 Phi_mu=np.asarray(problem.mu) @ arr.Phi, J=arr.J)
    step = _expected_shared_step if cfg.shared else _expected_theta_step
    record_index = {int(k): g for g, k in enumerate(cfg.record_steps)}
    iterations = np.arange(cfg.steps)
    alphas = cfg.schedule.values(iterations)
    betas = None if cfg.representation is None else cfg.betas(alphas, iterations)
    progress = _progress_bar(cfg, cfg.steps * len(cfg.seeds))
    for s in range(len(cfg.seeds)):
        # Divergence is detected explicitly after each step; silence the overflow on the way.
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(cfg.steps):
                beta = None if betas is None else float(betas[t])
                if not step(st, s, t, float(alphas[t]), beta, cfg, mean):
                    st.diverged[s] = t + 1
                    break
                if t + 1 >= cfg.averaging_start:
                    st.theta_sum[s] += _agent_parameters(st, s, cfg)
                g = record_index.get(t + 1)
                if g is not None:
                    _record_now(st, s, g, cfg, arr, problem.B_star)
        progress.update(cfg.steps)
    progress.close()


def _final_bases(theta: FloatArray, rank: int) -> FloatArray:
    """Top-r left singular vectors of each seed's stacked Theta (NaN for non-finite seeds)."""
    out = np.full((theta.shape[0], theta.shape[2], rank), np.nan)
    for s, theta_s in enumerate(theta):
        if np.all(np.isfinite(theta_s)):
            out[s] = kern.top_eigenvectors(kern.gram_matrix(np.ascontiguousarray(theta_s)),
                                            rank)[0]
    return out


def _schedule_setting(schedule: schedules.Schedule | None, given: Any) -> float | str | None:
    """How Trace.settings records a step-size argument: a number as given, else the schedule."""
    if schedule is None:
        return None
    return float(given) if isinstance(given, int | float) else repr(schedule)


def _averages(cfg: _Config, st: _State, theta_star: FloatArray
              ) -> tuple[FloatArray | None, FloatArray | None]:
    """(theta_bar (S, N, dim), (1/N) sum_i ||theta_bar_i - theta_i*||^2 (S,)); NaN where a seed
    diverged; (None, None) without ``average_from``."""
    if cfg.average_from is None:
        return None, None
    # theta_0 = 0 (heads and parameters start at 0): it counts, but adds nothing to the sum.
    averaged = st.theta_sum / (cfg.steps - cfg.average_from + 1)
    averaged[st.diverged >= 0] = np.nan
    return averaged, np.mean(np.sum((averaged - theta_star) ** 2, axis=2), axis=1)


def _trace(problem: Any, cfg: _Config, st: _State, arr: types.SimpleNamespace,
           step_size: Any, representation_step_size: Any = None) -> Trace:
    if cfg.shared:
        theta, B, heads = np.einsum("sdr,snr->snd", st.B, st.w), st.B, st.w
    else:
        theta, heads = st.theta, None
        B = (_final_bases(st.theta, cfg.rank)
             if cfg.algorithm != "fedtd" and cfg.rank is not None else None)
    averaged, averaged_error = _averages(cfg, st, arr.theta_star)
    records = st.records
    if not arr.any_nonzero:
        records[..., kern.RELATIVE] = np.nan
    has_distance = problem.B_star is not None
    settings = {"steps": cfg.steps, "n_agents": problem.n_agents, "rank": cfg.rank,
                "record_every": int(cfg.record_steps[1] - cfg.record_steps[0]),
                "communication_period": cfg.period, "rebase_heads": cfg.rebase_heads,
                "c_eta": cfg.c_eta, "c_B": cfg.c_B, "tau": cfg.tau,
                "step_size": _schedule_setting(cfg.schedule, step_size),
                "update_order": cfg.update_order, "gain_update": cfg.gain_update,
                "head_radius": cfg.head_radius, "retraction": cfg.retraction,
                "representation_step_size": _schedule_setting(cfg.representation,
                                                              representation_step_size),
                "average_from": cfg.average_from}
    return Trace(
        algorithm=cfg.algorithm, sampling=cfg.sampling, seeds=np.array(cfg.seeds),
        record_steps=cfg.record_steps,
        subspace_distance=st.distances[0] if has_distance else None,
        subspace_distance_frobenius=st.distances[1] if has_distance else None,
        parameter_error=records[..., kern.PARAM],
        relative_parameter_error=records[..., kern.RELATIVE],
        head_error=records[..., kern.HEAD] if cfg.shared else None,
        gain_error=records[..., kern.GAIN], theta=theta, eta=st.eta, B=B, heads=heads,
        diverged=st.diverged, divergence_threshold=cfg.threshold,
        settings=types.MappingProxyType(settings), averaged_theta=averaged,
        averaged_parameter_error=averaged_error)


def reading_for(algorithm: str, reading: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a reading that applies to ``algorithm``: the keyword arguments of `run`.

    Parameters
    ----------
    algorithm : str
        One of `ALGORITHMS`.
    reading : mapping
        Keyword arguments of `run` among `READING_SWITCHES` (e.g. ``{"update_order":
        "heads_first", "gain_update": "td"}``).

    Returns
    -------
    dict
        The switches of ``reading`` that `READING_SCOPE` lets ``algorithm`` take (every
        ``gain_update``; ``rebase_heads`` where there is a retraction); `run` refuses the others.
        A personalized reading thus compares with the oracle, fedtd or local TD run under the
        same switches wherever these mean something.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")
    unknown = sorted(set(reading) - set(READING_SWITCHES))
    if unknown:
        raise ValueError(f"reading: unknown switches {unknown}; the switches are "
                         f"{sorted(READING_SWITCHES)}")
    scope = READING_SCOPE | {"rebase_heads": READING_SCOPE["retraction"]}
    return {name: value for name, value in reading.items()
            if name not in scope or algorithm in scope[name]}


def run(problem: Any, algorithm: str = "personalized", *, steps: int,
        step_size: float | schedules.Schedule | Callable[[int], float],
        seeds: int | Sequence[int], rank: int | None = None, record_every: int | None = None,
        sampling: str = "markov", init_subspace: FloatArray | None = None,
        communication_period: int = 1, rebase_heads: bool = False, c_eta: float = 1.0,
        c_B: float = 1.0, tau: int = 1, divergence_threshold: float | None = None,
        progress: bool = False, update_order: str = "simultaneous", gain_update: str = "reward",
        head_radius: float | None = None, retraction: str = "qr",
        representation_step_size: float | schedules.Schedule | Callable[[int], float] | None
        = None, average_from: int | None = None) -> Trace:
    """Run an algorithm on a problem for every seed, all agents at once, and record it.

    Parameters
    ----------
    problem : ptdlib.problems.Problem
        Chains P (N, n, n), rewards (N, n), features (n, dim), fixed points, B_star (dim, r).
    algorithm : str, optional
        "personalized" (default), "fedrep", "oracle", "local", "fedtd" or "lowrank_svd"
        (module docstring).
    steps : int
        Iterations T >= 1.
    step_size : float, Schedule or callable
        alpha_t: a positive number (constant), a `ptdlib.schedules.Schedule`, or t -> alpha_t.
    seeds : int or sequence of int
        A count k >= 1 means seeds 0, 1, ..., k-1; a sequence gives distinct seed values >= 0.
    rank : int, optional
        r; defaults to the rank of problem.B_star (and must equal it when B_star exists).
    record_every : int, optional
        Record after every record_every iterations (and after the last); in [1, steps] and a
        multiple of communication_period for the communicating methods. Default: about 100
        records.
    sampling : str, optional
        "markov" (default), "iid" or "expected" (the mean path).
    init_subspace : (dim, rank) array, optional
        Orthonormal initial basis for personalized and fedrep; None draws a Haar-random one
        per seed from ``default_rng(seed)``.
    communication_period : int, optional
        K >= 1 (module docstring).
    rebase_heads : bool, optional
        Re-base the heads w <- R w at each retraction (docs/algorithm.md, step 7). Default False.
    c_eta, c_B : float, optional
        Single-timescale ratios of the gain and representation steps (default 1).
    tau : int, optional
        FedRep head steps per representation step (default 1).
    divergence_threshold : float, optional
        Bound on the iterates' absolute entries; default 1e6 times the problem scale.
    progress : bool, optional
        Show a tqdm progress bar (default False).
    update_order : str, optional
        "simultaneous" (default: steps 2-7 from the time-t iterates) or "heads_first" (the
        basis gradient from the new heads, `steps.heads_first_gradient`; personalized only).
    gain_update : str, optional
        "reward" (default, `steps.gain_step`) or "td" (differential TD,
        `steps.differential_gain_step`); every algorithm.
    head_radius : float, optional
        R > 0: project each head onto ||w|| <= R after its step and after re-basing
        (`steps.head_projection`); personalized, fedrep and oracle. Default None (no projection).
    retraction : str, optional
        "qr" (default, `steps.retraction_step`) or "polar" (`steps.polar_retraction_step`);
        personalized and fedrep.
    representation_step_size : float, Schedule or callable, optional
        beta_t, the basis step in place of c_B alpha_t (two timescales when beta_t / alpha_t
        -> 0), in any form ``step_size`` takes; personalized and fedrep, with c_B = 1. Default
        None (c_B alpha_t).
    average_from : int, optional
        a in [0, steps): also keep the Polyak-Ruppert average of the iterates theta_t^i,
        t = a, ..., steps (`Trace.averaged_theta`, `Trace.averaged_parameter_error`; module
        docstring, "Running average"). Default None: no average, and the run is bit-identical
        to one without the option.

    Returns
    -------
    Trace

    Raises
    ------
    ValueError
        For an unknown algorithm or sampling, steps < 1, a step size that is not finite and
        > 0, record_every out of range, a rank that does not match B_star, an init_subspace of
        the wrong shape or not orthonormal, oracle without B_star, K < 1, tau < 1; an unknown
        update_order, gain_update or retraction, head_radius <= 0, a representation_step_size
        that is not finite and > 0, a reading given for an algorithm it means nothing for
        (`READING_SCOPE`), c_B != 1 with representation_step_size, or average_from outside
        [0, steps).

    Notes
    -----
    One iteration: docs/algorithm.md, steps 1-7, composed from `ptdlib.steps`, in the reading
    the switches choose (docs/algorithm.md, "Readings"; the defaults are steps 1-7 as written).
    """
    options = {"steps": steps, "step_size": step_size, "seeds": seeds, "rank": rank,
               "record_every": record_every, "init_subspace": init_subspace,
               "communication_period": communication_period, "rebase_heads": rebase_heads,
               "c_eta": c_eta, "c_B": c_B, "tau": tau,
               "divergence_threshold": divergence_threshold, "progress": progress,
               "update_order": update_order, "gain_update": gain_update,
               "head_radius": head_radius, "retraction": retraction,
               "representation_step_size": representation_step_size,
               "average_from": average_from}
    cfg, st, arr, _ = _execute(problem, algorithm, sampling, options)
    return _trace(problem, cfg, st, arr, step_size, representation_step_size)


def _execute(problem: Any, algorithm: str, sampling: str, options: dict[str, Any]
             ) -> tuple[_Config, _State, types.SimpleNamespace, types.SimpleNamespace | None]:
    """Validate the options, run, and return the final state (and the sampler, if sampled)."""
    cfg = _configure(problem, algorithm, sampling, options)
    arr = _kernel_arrays(problem)
    st = _initial_state(problem, cfg)
    for s in range(len(cfg.seeds)):
        _record_now(st, s, 0, cfg, arr, problem.B_star)
    if cfg.sampling == "expected":
        _run_expected(problem, cfg, st, arr)
        return cfg, st, arr, None
    return cfg, st, arr, _run_sampled(problem, cfg, st, arr)


@dataclasses.dataclass(frozen=True, eq=False)
class PausedRun:
    """One seed's Markov run stopped after t iterations, with the draws of iteration t.

    Parameters
    ----------
    trace : Trace
        The run of iterations 0, ..., t - 1 (one seed): its final basis, heads and gains are
        the state (B_t, w_t^i, eta_t^i).
    states : (N,) int
        The agents' current states s_t^i.
    uniforms : (N,)
        The uniform u_t^i that moves agent i from s_t^i to s_{t+1}^i by the alias rule of
        `markov.sample_next_states` (module docstring, "Randomness").
    noise : (N,)
        The standard normal xi_t^i of agent i's observed reward r_i(s_t^i) + sigma xi_t^i; zeros
        when the problem has no reward noise (its stream is then never drawn).
    """

    trace: Trace
    states: IntArray
    uniforms: FloatArray
    noise: FloatArray


def pause(problem: Any, algorithm: str = "personalized", *, steps: int,
          step_size: float | schedules.Schedule | Callable[[int], float], seed: int,
          rank: int | None = None, init_subspace: FloatArray | None = None,
          communication_period: int = 1, rebase_heads: bool = False, c_eta: float = 1.0,
          c_B: float = 1.0, tau: int = 1,
          divergence_threshold: float | None = None, update_order: str = "simultaneous",
          gain_update: str = "reward", head_radius: float | None = None, retraction: str = "qr",
          representation_step_size: float | schedules.Schedule | Callable[[int], float] | None
          = None) -> PausedRun:
    """Run ``steps`` Markov iterations of one seed and stop: the state at t = steps and the
    draws that iteration t will consume, so that iteration t can be redone by hand.

    Parameters
    ----------
    problem, algorithm, step_size, rank, init_subspace, communication_period, rebase_heads,
    c_eta, c_B, tau, divergence_threshold, update_order, gain_update, head_radius, retraction,
    representation_step_size
        As for `run` (Markov sampling, one seed, one record at the end).
    steps : int
        Iterations completed before the pause, t >= 1.
    seed : int
        The seed (>= 0); the run is the one `run` gives for this seed.

    Returns
    -------
    PausedRun
        ``simulate.run(..., steps=t + 1)`` continues from exactly this state with exactly these
        draws (the streams of the module docstring are consumed one draw per use, never ahead).

    Raises
    ------
    ValueError
        For the invalid inputs of `run`, or if the seed diverged before the pause.
    """
    options = {"steps": steps, "step_size": step_size, "seeds": [seed], "rank": rank,
               "record_every": steps, "init_subspace": init_subspace,
               "communication_period": communication_period, "rebase_heads": rebase_heads,
               "c_eta": c_eta, "c_B": c_B, "tau": tau,
               "divergence_threshold": divergence_threshold, "progress": False,
               "update_order": update_order, "gain_update": gain_update,
               "head_radius": head_radius, "retraction": retraction,
               "representation_step_size": representation_step_size, "average_from": None}
    cfg, st, arr, sampler = _execute(problem, algorithm, "markov", options)
    if st.diverged[0] >= 0:
        raise ValueError(f"seed {seed} diverged after {st.diverged[0]} iterations, before the "
                         f"pause at steps = {steps}")
    transitions, noise = sampler.streams[0]
    return PausedRun(
        trace=_trace(problem, cfg, st, arr, step_size, representation_step_size),
        states=st.states[0].copy(),
        uniforms=np.array([g.random() for g in transitions]),
        noise=(np.array([g.standard_normal() for g in noise]) if noise
               else np.zeros(problem.n_agents)))

