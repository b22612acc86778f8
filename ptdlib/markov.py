"""Finite Markov chains: stationary laws, ergodicity, mixing, spectra and alias sampling.

Primer
------
A transition matrix ``P`` (n_states x n_states) is row-stochastic: ``P[s, s'] = Pr(s_{t+1} = s' |
s_t = s) >= 0`` and every row sums to 1. A stack of chains, one per agent, has shape
(n_agents, n_states, n_states).

- *Irreducible*: every state reaches every other, i.e. the directed graph ``s -> s'`` when
  ``P[s, s'] > 0`` has a single strongly connected (communicating) class.
- *Period* of an irreducible chain: gcd of the lengths of its cycles; *aperiodic* when it is 1.
  Irreducible and aperiodic is *ergodic*; then ``P^t`` is entrywise positive for some t.
- *Stationary distribution* ``mu``: ``mu P = mu``, ``sum(mu) = 1``; unique and positive when P is
  irreducible. Computed by GTH elimination, which censors states one at a time using only
  additions, multiplications and divisions of non-negative numbers, so no cancellation occurs.
- *Distance to stationarity* ``d(t) = max_s TV(P^t(s, .), mu)``, ``TV(a, b) = (1/2) sum |a - b|``.
  It is non-increasing in t; for an irreducible chain it tends to 0 iff the chain is aperiodic.
- *Mixing time* ``t_mix(eps) = min{t >= 0 : d(t) <= eps}`` (eps = 1/4 by convention).
- *Spectrum*: every eigenvalue of P has modulus <= 1, and 1 is an eigenvalue. ``rho`` is the largest
  modulus among the others, the *absolute spectral gap* is ``1 - rho`` and the *relaxation time*
  ``t_rel = 1 / (1 - rho)``. ``d(t)`` decays like ``rho^t``.
- *Reversible*: detailed balance ``mu_s P[s, s'] = mu_{s'} P[s', s]``; then the spectrum is real and
  ``(t_rel - 1) log(1/(2 eps)) <= t_mix(eps) <= t_rel log(1/(eps mu_min))``.
- *Alias method*: a table of n columns per row. Draw a column uniformly, then a biased coin
  chooses the column itself (probability ``prob[j]``) or its ``alias[j]``. Each draw costs O(1) and,
  with the rule in ``sample_next_states``, exactly one uniform random number.

References
----------
D. A. Levin, Y. Peres and E. L. Wilmer, *Markov Chains and Mixing Times*, 2nd ed., AMS, 2017
(chapters 1, 4 and 12). W. K. Grassmann, M. I. Taksar and D. P. Heyman, "Regenerative analysis
and steady state distributions for Markov chains", Operations Research 33(5), 1985 (GTH).
B. P. Jarvis and D. R. Shier, "Graph-theoretic analysis of finite Markov chains", 1999 (period by
breadth-first levels). A. J. Walker, "An efficient method for generating discrete random
variables with general distributions", ACM Trans. Math. Softw. 3(3), 1977. M. D. Vose, "A linear
algorithm for generating random numbers with a given distribution", IEEE Trans. Softw. Eng.
17(9), 1991. L. Hübschle-Schneider and P. Sanders, "Parallel weighted random sampling", ESA 2019
(the sweeping alias construction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components, shortest_path

from ptdlib._validation import (
    FloatArray,
    IntArray,
    RngLike,
    as_float_array,
    check_in_range,
    check_positive_int,
    check_row_stochastic,
)

BoolArray = NDArray[np.bool_]

# Block sizes (in array elements) of the vectorised kernels, measured on a 2-core machine: large
# enough to amortise Python overhead, small enough that temporaries stay in cache.
_GTH_BLOCK = 2**19  # (n, n, chains) working array
_DRAW_BLOCK = 2**20  # uniforms drawn at once


# ---------------------------------------------------------------- validation and graph structure


def _as_chain(P: ArrayLike, name: str = "P") -> FloatArray:
    """Validate one row-stochastic matrix (n, n)."""
    arr = check_row_stochastic(P, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a single (n, n) matrix; got shape {arr.shape}")
    return arr


def _promote(arr: FloatArray, name: str = "P") -> FloatArray:
    """View a validated (n, n) or (N, n, n) array as a stack (N, n, n)."""
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be (n, n) or a stack (n_agents, n, n); "
                         f"got shape {arr.shape}")
    return arr if arr.ndim == 3 else arr[None]


def _classes(P: FloatArray) -> list[list[int]]:
    """Strongly connected components of the graph of P, each sorted, ordered by first state."""
    n_classes, labels = connected_components(csr_array(P > 0), directed=True, connection="strong")
    return sorted(np.flatnonzero(labels == c).tolist() for c in range(n_classes))


def _period(P: FloatArray) -> int:
    """Period of an irreducible P: gcd over edges (u, v) of level(u) + 1 - level(v)."""
    graph = csr_array(P > 0)
    level = shortest_path(graph, unweighted=True, indices=0)
    u, v = graph.nonzero()
    return int(np.gcd.reduce((level[u] + 1 - level[v]).astype(np.int64)))


def _ergodicity_problem(P: FloatArray) -> str | None:
    """Why P is not ergodic, as the tail of an error message, or None when it is ergodic."""
    classes = _classes(P)
    if len(classes) > 1:
        return f"is reducible: communicating classes {classes}"
    d = _period(P)
    return f"is periodic with period {d}" if d > 1 else None


def _agent_name(name: str, index: int, stacked: bool) -> str:
    return f"{name}[{index}]" if stacked else name


def communicating_classes(P: ArrayLike) -> list[list[int]]:
    """Communicating classes of a chain (strongly connected components of its graph).

    Parameters
    ----------
    P : (n_states, n_states) row-stochastic matrix.

    Returns
    -------
    list of sorted state lists, ordered by their smallest state.

    Notes
    -----
    s and s' communicate iff P^a[s, s'] > 0 and P^b[s', s] > 0 for some a, b >= 0.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 1.7.
    """
    return _classes(_as_chain(P))


def is_irreducible(P: ArrayLike) -> bool:
    """True when the chain P (n_states, n_states) has a single communicating class."""
    return len(communicating_classes(P)) == 1


def period(P: ArrayLike) -> int:
    """Period of an irreducible chain: the gcd of the lengths of its cycles.

    Parameters
    ----------
    P : (n_states, n_states) irreducible row-stochastic matrix.

    Notes
    -----
    With BFS levels l(s) from state 0: period = gcd{ l(u) + 1 - l(v) : P[u, v] > 0 }.

    References
    ----------
    Jarvis & Shier (1999); Levin, Peres & Wilmer (2017), section 1.3.
    """
    P = _as_chain(P)
    classes = _classes(P)
    if len(classes) > 1:
        raise ValueError(f"P is reducible: communicating classes {classes}; the period is "
                         f"defined here for irreducible chains only")
    return _period(P)


def is_aperiodic(P: ArrayLike) -> bool:
    """True when the irreducible chain P has period 1 (ValueError when P is reducible)."""
    return period(P) == 1


def _ergodic_screen(P: FloatArray) -> BoolArray:
    """Sufficient test of ergodicity for each chain of a stack (N, n, n); False = undecided.

    A positive P is ergodic. Otherwise GTH decides irreducibility exactly: it never subtracts,
    so its zeros are exact zeros, and P is irreducible iff no pivot vanishes and mu > 0. An
    irreducible chain with a self-loop is aperiodic.
    """
    ok = (P > 0).all(axis=(1, 2))
    todo = np.flatnonzero(~ok & (np.diagonal(P, axis1=1, axis2=2) > 0).any(axis=1))
    mu, zero_pivot = _gth(P[todo])
    ok[todo] = ~zero_pivot & (mu > 0).all(axis=1)  # False for NaN (range overflow) too
    return ok


def check_ergodic(P: ArrayLike, name: str = "P") -> FloatArray:
    """Validate an ergodic chain or a stack of them and return it as float64.

    Parameters
    ----------
    P : (n_states, n_states) or (n_agents, n_states, n_states) row-stochastic.
    name : name used in error messages; agent i of a stack is reported as ``name[i]``.

    Returns
    -------
    P as a float64 array of the same shape.

    Notes
    -----
    Ergodic = irreducible and aperiodic = P^t > 0 entrywise for some t. A stack is screened in
    bulk (positive P, or GTH-irreducible with a self-loop); only chains the screen leaves
    undecided get the exact graph test (communicating classes, then the period).

    References
    ----------
    Levin, Peres & Wilmer (2017), Proposition 1.7.
    """
    arr = check_row_stochastic(P, name)
    stack = _promote(arr, name)
    for i in np.flatnonzero(~_ergodic_screen(stack)):
        problem = _ergodicity_problem(stack[i])
        if problem is not None:
            raise ValueError(f"{_agent_name(name, int(i), arr.ndim == 3)} {problem}; an ergodic "
                             f"chain must be irreducible and aperiodic (e.g. the lazy (I + P)/2)")
    return arr


# ------------------------------------------------------------------------ stationary distribution


def _gth(P: FloatArray) -> tuple[FloatArray, BoolArray]:
    """GTH elimination for every chain of a stack (N, n, n).

    Returns mu (N, n) and a mask of chains that met a zero pivot. Chains are placed on the last
    axis so each elimination step is one contiguous vector operation over a block of chains.
    """
    N, n, _ = P.shape
    mu = np.empty((N, n))
    zero_pivot = np.zeros(N, dtype=bool)
    block = max(1, _GTH_BLOCK // (n * n))
    for start in range(0, N, block):
        A = P[start:start + block].transpose(1, 2, 0).copy()  # (n, n, chains)
        stop = start + A.shape[2]
        for k in range(n - 1):
            scale = A[k, k + 1:].sum(axis=0)  # rate of leaving k for the uncensored states
            zero_pivot[start:stop] |= scale <= 0
            A[k + 1:, k] /= np.where(scale > 0, scale, 1.0)
            A[k + 1:, k + 1:] += A[k + 1:, k, None] * A[k, None, k + 1:]
        x = np.zeros((n, A.shape[2]))
        x[-1] = 1.0
        # x is mu scaled so that x[n-1] = 1; it overflows (to inf, then NaN) only when the
        # entries of mu span more than the float64 range, which the callers detect and report
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(n - 2, -1, -1):
                x[k] = np.einsum("ic,ic->c", x[k + 1:], A[k + 1:, k])
            mu[start:stop] = (x / x.sum(axis=0)).T
    return mu, zero_pivot


def _stationary(P: FloatArray, name: str, stacked: bool) -> FloatArray:
    """mu (N, n) of a validated stack, raising unless every chain is irreducible."""
    mu, zero_pivot = _gth(P)
    # Subtraction-free: a computed zero is an exact zero. In exact arithmetic the chain is
    # irreducible iff no pivot vanishes and mu > 0, so only flagged chains need the graph test.
    for i in np.flatnonzero(zero_pivot | ~(mu > 0).all(axis=1)):
        who = _agent_name(name, int(i), stacked)
        classes = _classes(P[i])
        if len(classes) > 1:
            raise ValueError(f"{who} is reducible: communicating classes {classes}; the "
                             f"stationary distribution needs an irreducible chain")
        raise ValueError(f"{who} is irreducible but the entries of its stationary distribution "
                         f"span more than the float64 range (ratio > 1e308)")
    return mu


def stationary_distribution(P: ArrayLike) -> FloatArray:
    """Stationary distribution of an irreducible chain by GTH elimination.

    Parameters
    ----------
    P : (n_states, n_states) irreducible row-stochastic matrix.

    Returns
    -------
    mu : (n_states,), positive, sums to 1.

    Notes
    -----
    mu P = mu, sum(mu) = 1 (GTH: censor states n-1 ... 1, back-substitute, normalise).

    References
    ----------
    Grassmann, Taksar & Heyman (1985); QuantEcon ``gth_solve``.
    """
    return _stationary(_as_chain(P)[None], "P", stacked=False)[0]


def stationary_distributions(P: ArrayLike) -> FloatArray:
    """Stationary distributions of a stack of irreducible chains, vectorised GTH.

    Parameters
    ----------
    P : (n_agents, n_states, n_states) row-stochastic; agent i is named ``P[i]`` in errors.

    Returns
    -------
    mu : (n_agents, n_states).

    Notes
    -----
    mu_i P_i = mu_i for every agent i.

    References
    ----------
    Grassmann, Taksar & Heyman (1985).
    """
    arr = check_row_stochastic(P, "P")
    if arr.ndim != 3:
        raise ValueError(f"P must be a stack (n_agents, n, n); got shape {arr.shape}")
    return _stationary(arr, "P", stacked=True)


# ----------------------------------------------------------------------------- distance and mixing


def _tv_max(Pt: FloatArray, mu: FloatArray) -> float:
    """max_s TV(Pt[s, .], mu)."""
    return float(0.5 * np.abs(Pt - mu).sum(axis=1).max())


def tv_to_stationarity(P: ArrayLike, t: int) -> float:
    """Worst-case total-variation distance to stationarity after t steps.

    Parameters
    ----------
    P : (n_states, n_states) irreducible row-stochastic matrix (periodic chains are allowed).
    t : integer >= 0.

    Notes
    -----
    d(t) = max_s (1/2) sum_s' |P^t(s, s') - mu(s')|.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 4.4.
    """
    P = _as_chain(P)
    t = check_positive_int(t, "t", minimum=0)
    mu = stationary_distribution(P)
    return _tv_max(np.linalg.matrix_power(P, t), mu)


def tv_curve(P: ArrayLike, t_max: int) -> FloatArray:
    """The whole curve d(0), ..., d(t_max) by repeated multiplication.

    Parameters
    ----------
    P : (n_states, n_states) irreducible row-stochastic matrix.
    t_max : integer >= 0.

    Returns
    -------
    d : (t_max + 1,).

    Notes
    -----
    P^(t+1) = P^t P; d(t) = max_s TV(P^t(s, .), mu).

    References
    ----------
    Levin, Peres & Wilmer (2017), section 4.4.
    """
    P = _as_chain(P)
    t_max = check_positive_int(t_max, "t_max", minimum=0)
    mu = stationary_distribution(P)
    d = np.empty(t_max + 1)
    Pt = np.eye(P.shape[0])
    d[0] = _tv_max(Pt, mu)
    for t in range(1, t_max + 1):
        Pt = Pt @ P
        d[t] = _tv_max(Pt, mu)
    return d


def mixing_time(P: ArrayLike, eps: float = 0.25, t_max: int = 100_000) -> int:
    """Exact mixing time: the least t >= 0 with d(t) <= eps.

    Parameters
    ----------
    P : (n_states, n_states) ergodic row-stochastic matrix.
    eps : threshold in (0, 1).
    t_max : cap on the answer; ValueError when d(t_max) > eps.

    Notes
    -----
    t_mix(eps) = min{t : d(t) <= eps}. Since d is non-increasing, square P until d(2^J) <= eps,
    then fix the binary digits of the answer below 2^J: O(log t_mix) products.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 4.5.
    """
    P = check_ergodic(_as_chain(P))
    eps = check_in_range(eps, "eps", 0.0, 1.0, low_open=True, high_open=True)
    t_max = check_positive_int(t_max, "t_max")
    mu = stationary_distribution(P)
    identity = np.eye(P.shape[0])
    if _tv_max(identity, mu) <= eps:
        return 0
    powers = [P]  # powers[j] = P^(2^j)
    while _tv_max(powers[-1], mu) > eps:
        t_top = 2 ** (len(powers) - 1)
        if t_top >= t_max:
            raise ValueError(f"mixing time exceeds the cap t_max={t_max}: d({t_top}) > eps={eps}; "
                             f"pass a larger t_max")
        powers.append(powers[-1] @ powers[-1])
    t_low, P_low = 0, identity  # invariant: d(t_low) > eps >= d(t_low + 2^(j+1))
    for j in range(len(powers) - 2, -1, -1):
        candidate = P_low @ powers[j]
        if _tv_max(candidate, mu) > eps:
            t_low, P_low = t_low + 2**j, candidate
    if t_low + 1 > t_max:
        raise ValueError(f"mixing time exceeds the cap t_max={t_max}: d({t_max}) > eps={eps}; "
                         f"pass a larger t_max")
    return t_low + 1


# -------------------------------------------------------------------------------------- spectrum


def second_largest_eigenvalue_modulus(P: ArrayLike) -> float:
    """rho: the largest modulus among the eigenvalues of P other than one eigenvalue 1.

    Parameters
    ----------
    P : (n_states, n_states) row-stochastic matrix (any; a reducible P with several closed
        classes has 1 repeated and so rho = 1).

    Notes
    -----
    rho = max{|lambda| : lambda in spec(P) minus one copy of 1}; 0 when n_states = 1. The removed
    eigenvalue is the one closest to 1, so a numerically repeated 1 still counts once.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 12.2.
    """
    P = _as_chain(P)
    eigenvalues = np.linalg.eigvals(P)
    others = np.delete(eigenvalues, np.argmin(np.abs(eigenvalues - 1.0)))
    # Every eigenvalue of a stochastic matrix has modulus <= 1; clip rounding above it.
    return float(min(np.abs(others).max(initial=0.0), 1.0))


def absolute_spectral_gap(P: ArrayLike) -> float:
    """Absolute spectral gap 1 - rho of a row-stochastic P (n_states, n_states); 0 if periodic.

    Notes
    -----
    gap = 1 - max{|lambda| : lambda != 1}.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 12.2.
    """
    return 1.0 - second_largest_eigenvalue_modulus(P)


def relaxation_time(P: ArrayLike) -> float:
    """Relaxation time 1 / (1 - rho) of P (n_states, n_states); inf when the gap is 0.

    Notes
    -----
    t_rel = 1 / gap.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 12.2.
    """
    gap = absolute_spectral_gap(P)
    return float(np.inf) if gap <= 0.0 else 1.0 / gap


def is_reversible(P: ArrayLike, atol: float = 1e-12) -> bool:
    """Detailed balance of an irreducible chain, within an absolute tolerance on the flows.

    Parameters
    ----------
    P : (n_states, n_states) irreducible row-stochastic matrix.
    atol : tolerance >= 0 on max |mu_s P[s, s'] - mu_s' P[s', s]|.

    Notes
    -----
    mu_s P[s, s'] = mu_s' P[s', s] for all s, s'.

    References
    ----------
    Levin, Peres & Wilmer (2017), section 1.6.
    """
    P = _as_chain(P)
    atol = check_in_range(atol, "atol", 0.0, np.inf, high_open=True)
    flow = stationary_distribution(P)[:, None] * P
    return bool(np.abs(flow - flow.T).max() <= atol)


# -------------------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class AliasTables:
    """Alias tables for a stack of chains: row (i, s) samples agent i's next state from s.

    Attributes
    ----------
    prob : (n_agents, n_states, n_states) float64 in [0, 1], acceptance probability per column.
    alias : (n_agents, n_states, n_states) int64 in [0, n_states), the column's alias.

    Notes
    -----
    Row law: P[i, s, k] = (prob[i, s, k] + sum_{j : alias[i, s, j] = k} (1 - prob[i, s, j])) / n.
    """

    prob: FloatArray
    alias: IntArray

    def __post_init__(self) -> None:
        prob = as_float_array(self.prob, "prob", ndim=3)
        alias = np.asarray(self.alias)
        if prob.shape[1] != prob.shape[2] or 0 in prob.shape or alias.shape != prob.shape:
            raise ValueError(f"prob and alias must both be (n_agents, n, n) with n_agents, n >= 1;"
                             f" got shapes {prob.shape} and {alias.shape}")
        if alias.dtype.kind not in "iu" or alias.min() < 0 or alias.max() >= prob.shape[2]:
            raise ValueError(f"alias must hold integers in [0, {prob.shape[2]}); got dtype "
                             f"{alias.dtype}, range [{alias.min()}, {alias.max()}]")
        if prob.min() < 0 or prob.max() > 1:
            raise ValueError(f"prob must lie in [0, 1]; got range [{prob.min()}, {prob.max()}]")
        # C order: samplers index the tables through flat offsets (agent * n + state) * n + j
        object.__setattr__(self, "prob", np.ascontiguousarray(prob))
        object.__setattr__(self, "alias", np.ascontiguousarray(alias, dtype=np.int64))

    @property
    def n_agents(self) -> int:
        return int(self.prob.shape[0])

    @property
    def n_states(self) -> int:
        return int(self.prob.shape[2])


def alias_tables(P: ArrayLike) -> AliasTables:
    """Walker alias tables for every row of a stack of transition matrices.

    Parameters
    ----------
    P : (n_agents, n_states, n_states) row-stochastic, or one (n_states, n_states) (N = 1).

    Returns
    -------
    AliasTables with prob, alias of shape (n_agents, n_states, n_states); a zero-probability
    state is never sampled (its column has prob 0 and no column aliases it). Each row's table
    depends on that row alone, so equal rows give equal tables wherever they appear.

    Notes
    -----
    q = n P[i, s, :]; light columns (q < 1) keep prob q and alias a heavy one (Vose's pairing, in
    the sweeping order, with prefix sums instead of repeated subtraction; compiled, row by
    row: `ptdlib._kernels.alias_rows`).

    References
    ----------
    Vose (1991); Hübschle-Schneider & Sanders (2019).
    """
    return _build_alias_tables(_promote(check_row_stochastic(P, "P")))


def _build_alias_tables(stack: FloatArray) -> AliasTables:
    """``alias_tables`` for a validated stack (N, n, n): the compiled sweep of every row."""
    from ptdlib._kernels import alias_rows  # numba loads only where tables are built

    N, n, _ = stack.shape
    prob = np.empty((N * n, n))
    alias = np.empty((N * n, n), dtype=np.int64)
    alias_rows(np.ascontiguousarray(stack).reshape(N * n, n), prob, alias)
    return AliasTables(prob.reshape(N, n, n), alias.reshape(N, n, n))


def _as_index_array(x: ArrayLike, name: str, upper: int) -> IntArray:
    """Integer array with values in [0, upper)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array; got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= upper)
    if bad.any():
        raise ValueError(f"{name} must lie in [0, {upper}); got {arr[bad].flat[0]}")
    return arr.astype(np.int64, copy=False)


def _alias_step(tables: AliasTables, agent: IntArray, state: IntArray,
                u: FloatArray) -> IntArray:
    """The one-uniform alias rule (trusted inputs); see ``sample_next_states``."""
    n = tables.n_states
    x = u * n
    column = np.minimum(x.astype(np.int64), n - 1)
    flat = (agent * n + state) * n + column  # index into the C-ordered (N, n, n) tables
    accept = (x - column) < tables.prob.ravel()[flat]
    return np.where(accept, column, tables.alias.ravel()[flat])


def sample_next_states(tables: AliasTables, agent_index: ArrayLike, states: ArrayLike,
                       uniforms: ArrayLike) -> IntArray:
    """Next states for many draws at once, one uniform per draw.

    Parameters
    ----------
    tables : AliasTables from ``alias_tables``.
    agent_index, states : integer arrays (broadcastable), agent in [0, N), state in [0, n).
    uniforms : float64 array in [0, 1), broadcastable with the indices.

    Returns
    -------
    next states, int64, of the broadcast shape.

    Notes
    -----
    The rule, exactly (float64 arithmetic; compiled kernels must reproduce it bit for bit)::

        x = u * n                              # one IEEE multiply, n = n_states as float64
        j = min(floor(x), n - 1)               # int; the clip is a guard (never active for
                                               # u < 1 under round-to-nearest), keep it
        next = j if (x - j) < prob[a, s, j] else alias[a, s, j]

    Pr(next = k) = (1/n) (prob[k] + sum_{alias[j] = k} (1 - prob[j])) = P[a, s, k].

    References
    ----------
    Walker (1977); Vose (1991).
    """
    if not isinstance(tables, AliasTables):
        raise ValueError(f"tables must be AliasTables; got {type(tables).__name__}")
    agent = _as_index_array(agent_index, "agent_index", tables.n_agents)
    state = _as_index_array(states, "states", tables.n_states)
    u = as_float_array(uniforms, "uniforms")
    if u.size and (u.min() < 0.0 or u.max() >= 1.0):
        raise ValueError(f"uniforms must lie in [0, 1); got range [{u.min()}, {u.max()}]")
    try:
        shape = np.broadcast_shapes(agent.shape, state.shape, u.shape)
    except ValueError as exc:
        raise ValueError(f"agent_index, states and uniforms must broadcast; got shapes "
                         f"{agent.shape}, {state.shape}, {u.shape}") from exc
    return _alias_step(tables, *(np.broadcast_to(a, shape) for a in (agent, state, u)))


def _as_generator(rng: RngLike) -> np.random.Generator:
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rng must be None, an int, a SeedSequence or a Generator; "
                         f"got {rng!r}") from exc


def sample_trajectories(P: ArrayLike, initial_states: ArrayLike, steps: int,
                        rng: RngLike) -> IntArray:
    """Trajectories of many chains at once by the alias method.

    Parameters
    ----------
    P : (n_chains, n_states, n_states) one chain per trajectory, or one (n_states, n_states)
        (or (1, n_states, n_states)) shared by all trajectories.
    initial_states : (n_chains,) integers in [0, n_states).
    steps : number of transitions, >= 0.
    rng : seed or Generator (``np.random.default_rng``).

    Returns
    -------
    states : (n_chains, steps + 1) int64, column 0 = initial_states.

    Notes
    -----
    U = rng.random((steps, n_chains)) (drawn in blocks of time steps, the same stream);
    states[i, t + 1] = sample_next_states(tables, i, states[i, t], U[t, i]).

    References
    ----------
    Levin, Peres & Wilmer (2017), section 1.1.
    """
    stack = _promote(check_row_stochastic(P, "P"))
    steps = check_positive_int(steps, "steps", minimum=0)
    start = _as_index_array(initial_states, "initial_states", stack.shape[-1])
    if start.ndim != 1:
        raise ValueError(f"initial_states must be 1-dimensional (n_chains,); got shape "
                         f"{start.shape}")
    if stack.shape[0] > 1 and start.shape[0] != stack.shape[0]:
        raise ValueError(f"initial_states must hold one state per chain of P ({stack.shape[0]});"
                         f" got {start.shape[0]}")
    generator = _as_generator(rng)
    tables = _build_alias_tables(stack)
    n_chains = start.shape[0]
    agent = np.arange(n_chains) if stack.shape[0] > 1 else np.zeros(n_chains, dtype=np.int64)
    states = np.empty((n_chains, steps + 1), dtype=np.int64)
    states[:, 0] = start
    block = max(1, _DRAW_BLOCK // max(n_chains, 1))
    for t0 in range(0, steps, block):
        u = generator.random((min(block, steps - t0), n_chains))
        for k, u_t in enumerate(u):
            t = t0 + k
            states[:, t + 1] = _alias_step(tables, agent, states[:, t], u_t)
    return states
